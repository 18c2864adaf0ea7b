using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Hosting;
using Serve.Orleans;

namespace Serve;

/// <summary>Runs Serve as one node of a cluster on Orleans (membership, failure detection, remote calls).</summary>
public static class ServeOrleansExtensions
{
    /// <summary>
    /// The name of the Orleans grain storage that holds the cluster controller's desired state. When none is configured
    /// under this name, an in-memory one is added (its state is lost with the silo that holds it; the controller then
    /// rebuilds it from the nodes' reports). In production configure a durable one, e.g.
    /// <c>silo.AddRedisGrainStorage("serve", …)</c> from Microsoft.Orleans.Persistence.Redis.
    /// </summary>
    public const string StorageName = "serve";

    /// <summary>
    /// Makes this Serve host a node of a cluster: starts an Orleans silo in the same process (configure its clustering
    /// in <paramref name="configureSilo"/>, e.g. <c>silo.UseRedisClustering(...)</c>) with Serve's node agent, so that
    /// handles and HTTP on this node also reach the replicas other nodes run (local replicas first), and a failed
    /// node's replicas are dropped at once. Every node runs the same application assemblies.
    /// </summary>
    /// <remarks>
    /// One cluster controller (an Orleans grain) decides how many replicas of each deployment run on which node, from
    /// every node's heartbeat; the applications each node adds say what the cluster runs (docs/cluster.md).
    /// </remarks>
    /// <param name="builder">The builder <c>AddServe</c> returned.</param>
    /// <param name="configureSilo">Configures the Orleans silo (clustering, endpoints).</param>
    /// <param name="configureCluster">This node's cluster settings.</param>
    public static IServeBuilder UseOrleans(this IServeBuilder builder, Action<ISiloBuilder> configureSilo, Action<ServeClusterOptions>? configureCluster = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configureSilo);
        builder.Services.AddOrleans(silo =>
        {
            configureSilo(silo);
            silo.AddServeNode(configureCluster);
        });
        return builder;
    }

    /// <summary>
    /// Adds Serve's node agent to an Orleans silo whose services also hold a Serve host (<c>AddServe</c>). Use it when
    /// the silo is configured elsewhere (e.g. Orleans' test cluster); <see cref="UseOrleans"/> calls it for you.
    /// </summary>
    public static ISiloBuilder AddServeNode(this ISiloBuilder silo, Action<ServeClusterOptions>? configureCluster = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var services = silo.Services;
        if (services.Any(d => d.ServiceType == typeof(ClusterReplicaDirectory)))
            return silo;
        services.AddOptions<ServeClusterOptions>()
            .Configure(o => configureCluster?.Invoke(o))
            .Validate(o =>
            {
                o.Validate();
                return true;
            })
            .ValidateOnStart();
        silo.AddGrainService<NodeAgent>();
        services.TryAddSingleton<INodeAgentClient, NodeAgentClient>();
        services.TryAddSingleton<NodeCalls>();
        services.TryAddSingleton<WireSerializers>();
        services.AddSingleton<ClusterReplicaDirectory>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterReplicaDirectory>());
        // The Serve host runs in cluster assignment mode once a cluster layer is registered.
        services.AddSingleton<ClusterStatus>();
        services.AddSingleton<Control.IClusterLayer>(sp => sp.GetRequiredService<ClusterStatus>());
        services.AddSingleton<ClusterNode>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterNode>());
        if (!services.Any(d => d.IsKeyedService && d.ServiceType == typeof(global::Orleans.Storage.IGrainStorage) && Equals(d.ServiceKey, StorageName)))
            silo.AddMemoryGrainStorage(StorageName);
        return silo;
    }
}
