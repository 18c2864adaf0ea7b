using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;
using Serve.Config;
using Serve.Orleans;

namespace Serve.Cli;

/// <summary>The cluster settings <c>serve run</c> acts on: the config's <c>cluster</c> section with <c>--cluster</c> applied.</summary>
internal sealed record ClusterSettings(ClusterStoreAddress Store, string StoreSource, ClusterConfig Config)
{
    /// <summary>
    /// Merges the file's section and the flag (the flag's store wins). Null when neither asks for a cluster; a problem
    /// names the flag or key path and what to write.
    /// </summary>
    public static ClusterSettings? Resolve(ServeConfig config, string? flag, out string? problem)
    {
        problem = null;
        var section = config.Cluster;
        if (flag is null && section is null)
            return null;
        section ??= new ClusterConfig();
        if (flag is not null)
        {
            if (!ClusterStoreAddress.TryParse(flag, out var store, out var reason))
            {
                problem = $"--cluster: {reason}";
                return null;
            }
            return new ClusterSettings(store!, "--cluster", section);
        }
        if (section.Store is null)
        {
            problem = $"{config.Source}: cluster.store: missing; set it to the cluster store ({ClusterStoreAddress.Expected}) or pass --cluster";
            return null;
        }
        return new ClusterSettings(section.Store, $"cluster.store in {config.Source}", section);
    }
}

/// <summary>
/// <c>serve run</c> as one node of a cluster: a Generic Host with the Serve host and an Orleans silo (Serve.Orleans)
/// whose members meet in Redis. Checks the store before anything starts and bounds the join, so a node that cannot
/// reach its cluster fails with a message instead of retrying for ever.
/// </summary>
internal sealed class ClusterNode : IAsyncDisposable
{
    /// <summary>How long the store check waits for Redis to answer.</summary>
    internal static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long a node may take to start its silo and join the cluster.</summary>
    internal static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    private readonly IHost _host;

    private ClusterNode(IHost host, ServeHost serve, string nodeId)
    {
        _host = host;
        Serve = serve;
        NodeId = nodeId;
    }

    public ServeHost Serve { get; }

    /// <summary>This node's id in the cluster (its silo address, as replica listings and errors show it).</summary>
    public string NodeId { get; }

    /// <summary>Checks the store, starts the node and joins the cluster; on failure writes why to <paramref name="error"/> and returns the exit code.</summary>
    public static async Task<(ClusterNode? Node, int Code)> StartAsync(ClusterSettings cluster, Action<ServeOptions> configureServe,
        TextWriter output, TextWriter error, CancellationToken stop)
    {
        var store = cluster.Store;
        if (await CheckStoreAsync(store, StoreTimeout, stop).ConfigureAwait(false) is { } unreachable)
        {
            await error.WriteLineAsync(Unreachable(cluster, unreachable)).ConfigureAwait(false);
            return (null, RunCommand.ClusterUnavailable);
        }

        var config = cluster.Config;
        var advertised = config.AdvertisedAddress is { } a ? IPAddress.Parse(a) : DefaultAddress(store);
        int siloPort, gatewayPort;
        try
        {
            siloPort = config.SiloPort is > 0 and var s ? s : FreePort(advertised);
            gatewayPort = config.GatewayPort ?? 0;
        }
        catch (SocketException e)
        {
            await error.WriteLineAsync($"error: cannot listen on {advertised} for this node's silo port: {e.Message}; set cluster.advertised_address to an address of this machine").ConfigureAwait(false);
            return (null, RunCommand.ClusterUnavailable);
        }

        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ApplicationName = "serve" });
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        // serve run handles Ctrl-C and SIGTERM itself (drain first, then leave the cluster).
        builder.Services.AddSingleton<IHostLifetime, NoLifetime>();
        builder.Services.AddServe(configureServe).UseOrleans(silo =>
        {
            silo.UseRedisClustering(o =>
            {
                o.ConfigurationOptions = new StackExchange.Redis.ConfigurationOptions
                {
                    EndPoints = { store.Endpoint },
                    AbortOnConnectFail = false,
                    ConnectTimeout = (int)StoreTimeout.TotalMilliseconds,
                };
            });
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = config.ClusterId;
                o.ServiceId = config.ClusterId;
            });
            silo.ConfigureEndpoints(advertised, siloPort, gatewayPort);
        }, options =>
        {
            foreach (var (name, value) in config.NodeLabels)
                options.NodeLabels[name] = value;
            options.Placement = config.Placement == "pack" ? ReplicaPlacement.Pack : ReplicaPlacement.Spread;
            options.WireFormat = config.WireFormat switch
            {
                "json" => BoundaryFormat.Json,
                "host" => BoundaryFormat.HostDefault,
                _ => BoundaryFormat.MessagePack,
            };
            if (config.DrainTimeout is { } drain)
                options.DrainTimeout = drain;
        });

        var where = $"cluster '{config.ClusterId}' at {store} ({cluster.StoreSource})";
        await output.WriteLineAsync($"Joining {where} as {advertised}:{siloPort.ToString(CultureInfo.InvariantCulture)}...").ConfigureAwait(false);
        var host = builder.Build();
        using var join = CancellationTokenSource.CreateLinkedTokenSource(stop);
        join.CancelAfter(JoinTimeout);
        try
        {
            await host.StartAsync(join.Token).WaitAsync(join.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (!stop.IsCancellationRequested && !join.IsCancellationRequested
                                  && e is ServeException or ArgumentException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            // The host itself could not start (e.g. its HTTP port is taken), as without --cluster.
            await error.WriteLineAsync($"error: cannot start the host: {e.Message}").ConfigureAwait(false);
            await StopAsync(host).ConfigureAwait(false);
            return (null, RunCommand.InvalidConfig);
        }
        catch (Exception e) when (!stop.IsCancellationRequested)
        {
            var reason = join.IsCancellationRequested
                ? $"it did not join within {JoinTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s"
                : $"{e.GetType().Name}: {e.Message}";
            await error.WriteLineAsync(
                $"error: this node could not join {where}: {reason}. Check that every node can reach {store} and that the nodes can reach " +
                $"each other on their silo ports (this node: {advertised}:{siloPort.ToString(CultureInfo.InvariantCulture)}; set cluster.advertised_address and cluster.silo_port to change them).").ConfigureAwait(false);
            await StopAsync(host).ConfigureAwait(false);
            return (null, RunCommand.ClusterUnavailable);
        }
        catch (Exception) when (stop.IsCancellationRequested)
        {
            await StopAsync(host).ConfigureAwait(false);
            return (null, RunCommand.Ok);
        }

        var nodeId = host.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress.ToParsableString();
        var labels = config.NodeLabels.Count == 0 ? "none" : string.Join(", ", config.NodeLabels.Select(l => $"{l.Key}={l.Value}"));
        await output.WriteLineAsync(
            $"Cluster node {nodeId} joined {where}: silo port {siloPort.ToString(CultureInfo.InvariantCulture)}, " +
            $"{(gatewayPort > 0 ? $"gateway port {gatewayPort.ToString(CultureInfo.InvariantCulture)}" : "no gateway")}, labels {labels}, placement {config.Placement ?? "spread"}").ConfigureAwait(false);
        return (new ClusterNode(host, host.Services.GetRequiredService<ServeHost>(), nodeId), RunCommand.Ok);
    }

    /// <summary>Drains the Serve host first (other nodes' calls to it are refused and go elsewhere), then leaves the cluster.</summary>
    public async ValueTask DisposeAsync()
    {
        await Serve.ShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        await StopAsync(_host).ConfigureAwait(false);
    }

    private static async Task StopAsync(IHost host)
    {
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            await host.StopAsync(timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or InvalidOperationException)
        {
            // Leaving the cluster gracefully timed out: the other nodes' membership declares this node dead instead.
        }
        if (host is IAsyncDisposable disposable)
            await disposable.DisposeAsync().ConfigureAwait(false);
        else
            host.Dispose();
    }

    internal static string Unreachable(ClusterSettings cluster, string reason)
    {
        var store = cluster.Store;
        var local = store.IsLoopback
            ? $"Is redis-server running there? Start one with `redis-server --port {store.Port.ToString(CultureInfo.InvariantCulture)}` (Debian/Ubuntu: `apt-get install redis-server`), or "
            : "Is Redis running there and reachable from this machine (firewall, bind address, protected mode)? Or ";
        return $"error: cannot reach the cluster store {store} ({cluster.StoreSource}): {reason}.{Environment.NewLine}" +
               $"{local}point {(cluster.StoreSource == "--cluster" ? "--cluster" : "cluster.store")} at a running Redis ({ClusterStoreAddress.Expected}).";
    }

    /// <summary>Connects and sends PING; null when Redis answers, else why not.</summary>
    internal static async Task<string?> CheckStoreAsync(ClusterStoreAddress store, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(store.Host.Trim('[', ']'), store.Port, bounded.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), bounded.Token).ConfigureAwait(false);
            var buffer = new byte[256];
            var read = 0;
            while (read < buffer.Length && Array.IndexOf(buffer, (byte)'\n', 0, read) < 0)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), bounded.Token).ConfigureAwait(false);
                if (n == 0)
                    break;
                read += n;
            }
            var reply = Encoding.ASCII.GetString(buffer, 0, read).TrimEnd();
            if (reply.StartsWith("+PONG", StringComparison.Ordinal))
                return null;
            if (reply.StartsWith("-NOAUTH", StringComparison.Ordinal))
                return "it asks for a password, which serve run does not support yet";
            return reply.Length == 0
                ? "it closed the connection without answering PING; is it a Redis server?"
                : $"it answered PING with \"{(reply.Length > 120 ? reply[..120] + "..." : reply)}\"; is it a Redis server?";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"no answer within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s";
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (nothing listens on that port)",
                SocketError.HostNotFound or SocketError.NoData => $"host '{store.Host}' not found",
                _ => e.Message,
            };
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    /// <summary>127.0.0.1 when the store is on loopback (every node on this machine), else this machine's first IPv4 address.</summary>
    private static IPAddress DefaultAddress(ClusterStoreAddress store)
    {
        if (store.IsLoopback)
            return IPAddress.Loopback;
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
                continue;
            foreach (var address in nic.GetIPProperties().UnicastAddresses)
                if (address.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(address.Address))
                    return address.Address;
        }
        return IPAddress.Loopback;
    }

    private static int FreePort(IPAddress address)
    {
        var listener = new TcpListener(address, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private sealed class NoLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
