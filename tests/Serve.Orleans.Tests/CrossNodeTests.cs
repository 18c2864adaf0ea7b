using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace Serve.Orleans.Tests;

/// <summary>Which silo a replica runs on, registered per silo.</summary>
public sealed record NodeName(string Value);

[Deployment]
public sealed partial class WhereAmI([FromServices] NodeName node)
{
    public string Where(string caller) => $"{caller}->{node.Value}";

    public async Task<int> AddAsync(int a, int b)
    {
        await Task.Yield();
        return a + b;
    }

    public void Touch()
    {
    }
}

/// <summary>
/// Serve on Orleans' in-process test cluster: every silo runs <c>AddServe()</c> with the same application; the first
/// silo ("Silo_0") runs it with zero replicas, so each call from a handle there crosses to another node.
/// </summary>
public sealed class CrossNodeTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static async Task<InProcessTestCluster> StartAsync(short silos)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            // Several nodes share this process: no HTTP ingress, whose default port they would all want.
            host.Services.AddServe(o => o.Http.Enabled = false)
                .AddApplication(WhereAmI.Bind().WithOptions(o => o.NumReplicas = silo.SiloName == "Silo_0" ? 0 : 1));
        });
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddServeNode(cluster => cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100));
            // Short membership probes, so a killed silo is declared dead within seconds.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromMilliseconds(500);
                o.NumMissedProbesLimit = 1;
                o.NumVotesForDeathDeclaration = 1;
                o.TableRefreshTimeout = TimeSpan.FromMilliseconds(500);
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(1);
            });
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static ServeHost Serve(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ServeHost>();

    /// <summary>Waits (bounded) until the router of WhereAmI on <paramref name="host"/> knows <paramref name="count"/> remote replicas.</summary>
    private static async Task WaitForRemoteReplicasAsync(ServeHost host, int count)
    {
        var router = host.GetHandle("WhereAmI").Endpoint.Router;
        using var timeout = new CancellationTokenSource(Bound);
        while (router.Replicas.Count(r => !r.IsLocal) != count)
            await Task.Delay(20, timeout.Token);
    }

    [Fact]
    public async Task A_handle_on_one_node_calls_a_replica_on_another_node()
    {
        await using var cluster = await StartAsync(2);
        var primary = Serve(cluster.Silos[0]);
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);

        var handle = primary.GetHandle<WhereAmIHandle>("WhereAmI");
        Assert.Equal("a->Silo_1", await handle.WhereAsync("a").AsTask().WaitAsync(Bound));
        Assert.Equal(5, await handle.AddAsync(2, 3).AsTask().WaitAsync(Bound));
        await handle.TouchAsync().AsTask().WaitAsync(Bound);
        Assert.Equal("b->Silo_1", await primary.GetHandle("WhereAmI").InvokeAsync("Where", ["b"]).AsTask().WaitAsync(Bound));

        // Locality: the node that runs a replica serves its own handle's calls itself.
        var secondary = Serve(cluster.Silos[1]).GetHandle<WhereAmIHandle>("WhereAmI");
        Assert.Equal("c->Silo_1", await secondary.WhereAsync("c").AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task Calls_keep_succeeding_when_a_node_holding_replicas_is_killed()
    {
        await using var cluster = await StartAsync(3);
        var primary = Serve(cluster.Silos[0]);
        await WaitForRemoteReplicasAsync(primary, 2).WaitAsync(Bound);
        var handle = primary.GetHandle<WhereAmIHandle>("WhereAmI");
        var victim = cluster.Silos[1];
        var survivorName = cluster.Silos[2].SiloAddress == victim.SiloAddress ? throw new InvalidOperationException() : "Silo_2";

        using var stop = new CancellationTokenSource();
        var results = new List<string>();
        var failures = new List<Exception>();
        async Task CallerAsync(int id)
        {
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var answer = await handle.WhereAsync($"{id}.{i++}");
                    lock (results)
                        results.Add(answer);
                }
                catch (Exception e)
                {
                    lock (failures)
                        failures.Add(e);
                }
            }
        }
        var callers = Enumerable.Range(0, 4).Select(CallerAsync).ToArray();
        while (Volatile.Read(ref results) is { } r && r.Count < 20)
            await Task.Delay(10).WaitAsync(Bound);

        await cluster.KillSiloAsync(victim).WaitAsync(Bound);
        // Both the router's drop and calls after it: wait until the dead node has left the router, then some more calls.
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);
        int before;
        lock (results)
            before = results.Count;
        while (true)
        {
            lock (results)
            {
                if (results.Count >= before + 20)
                    break;
            }
            await Task.Delay(10).WaitAsync(Bound);
        }
        stop.Cancel();
        await Task.WhenAll(callers).WaitAsync(Bound);

        Assert.Empty(failures);
        lock (results)
            Assert.All(results.Skip(before), x => Assert.EndsWith("->" + survivorName, x));
    }
}
