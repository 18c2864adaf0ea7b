using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Serve.Orleans.Tests;

[Deployment]
public sealed partial class Numbers
{
    /// <summary>All items ready at once.</summary>
    public async IAsyncEnumerable<int> Ready(int count)
    {
        for (var i = 0; i < count; i++)
            yield return i;
        await Task.CompletedTask;
    }

    /// <summary>Yields <paramref name="count"/> ready items, then fails.</summary>
    public async IAsyncEnumerable<int> FailAfter(int count)
    {
        for (var i = 0; i < count; i++)
            yield return i;
        await Task.CompletedTask;
        throw new InvalidOperationException($"the producer failed after {count} items");
    }
}

/// <summary>
/// Remote streams bring the items their producer has ready several per round trip (bounded), without changing what the
/// consumer sees: every item in order, an error after the items before it, the slot freed at the end.
/// </summary>
public sealed class StreamBatchTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static async Task<InProcessTestCluster> StartAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            // The cluster controller places the replica: only the second node offers the "slot" it needs.
            host.Services.AddServe(o =>
                {
                    o.Http.Enabled = false;
                    if (silo.SiloName != "Silo_0")
                        o.Resources.Custom["slot"] = 1;
                })
                .AddApplication(Numbers.Bind().WithOptions(o => o.Resources["slot"] = 1));
        });
        builder.ConfigureSilo((_, silo) => silo.AddServeNode(cluster => cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100)));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static InProcessSiloHandle Silo(InProcessTestCluster cluster, string name) =>
        cluster.Silos.Single(s => s.ServiceProvider.GetRequiredService<NodeName>().Value == name);

    private static async Task<NumbersHandle> CallerAsync(InProcessTestCluster cluster)
    {
        var caller = Silo(cluster, "Silo_0").ServiceProvider.GetRequiredService<ServeHost>();
        var router = caller.GetHandle("Numbers").Endpoint.Router;
        using var timeout = new CancellationTokenSource(Bound);
        while (!router.Replicas.Any(r => !r.IsLocal))
            await Task.Delay(20, timeout.Token);
        return caller.GetHandle<NumbersHandle>("Numbers");
    }

    private static async Task WaitForNoCallsOnReplicaAsync(InProcessTestCluster cluster)
    {
        var replica = Silo(cluster, "Silo_1").ServiceProvider.GetRequiredService<ServeHost>().GetHandle("Numbers").Endpoint.Router.Replicas.Single(r => r.IsLocal);
        using var timeout = new CancellationTokenSource(Bound);
        while (replica.Ongoing != 0)
            await Task.Delay(10, timeout.Token);
    }

    [Fact]
    public async Task A_stream_of_ready_items_arrives_complete_and_in_order_several_items_per_round_trip()
    {
        await using var cluster = await StartAsync();
        var handle = await CallerAsync(cluster).WaitAsync(Bound);

        var items = new List<int>();
        await foreach (var item in handle.ReadyAsync(1000).WithCancellation(default))
            items.Add(item);
        Assert.Equal(Enumerable.Range(0, 1000), items);
        await WaitForNoCallsOnReplicaAsync(cluster).WaitAsync(Bound);

        // What one round trip brings, asked of the producing node's agent directly.
        var owner = Silo(cluster, "Silo_1").ServiceProvider;
        var host = owner.GetRequiredService<ServeHost>();
        var calls = owner.GetRequiredService<NodeCalls>();
        var wire = owner.GetRequiredService<WireSerializers>();
        var method = host.GetHandle("Numbers").Definition.Methods.Single(m => m.Name == "Ready");
        var replicaId = host.GetHandle("Numbers").Endpoint.Router.Replicas.Single(r => r.IsLocal).ReplicaId;
        var start = await calls.StartStreamAsync(new RemoteCall(RunOptions.DefaultName, "Numbers", replicaId, method.MethodId,
            RemoteMethods.WriteArguments(wire.Local, "Numbers", method, [200]), "test", (byte)wire.Format)).WaitAsync(Bound);
        Assert.Equal(RemoteStatus.Completed, start.Status);
        var sizes = new List<int>();
        var received = new List<int>();
        RemoteStreamItems batch;
        do
        {
            batch = await calls.NextItemsAsync(start.StreamId!).WaitAsync(Bound);
            sizes.Add(batch.Items.Length);
            received.AddRange(batch.Items.Select(i => (int)wire.Local.Deserialize(i, typeof(int))!));
        }
        while (!batch.Ended);
        Assert.Equal(Enumerable.Range(0, 200), received);
        Assert.Equal(NodeCalls.MaxItemsPerFetch, sizes[0]);
        Assert.True(sizes.Count < 200 / 2, $"{sizes.Count} round trips for 200 ready items: {string.Join(", ", sizes)}");
        Assert.Equal(0, calls.RunningStreams);
        await WaitForNoCallsOnReplicaAsync(cluster).WaitAsync(Bound);
    }

    [Fact]
    public async Task A_producer_failing_after_some_items_delivers_those_items_then_its_error_and_frees_the_slot()
    {
        await using var cluster = await StartAsync();
        var handle = await CallerAsync(cluster).WaitAsync(Bound);

        var items = new List<int>();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var item in handle.FailAfterAsync(3).WithCancellation(default))
                items.Add(item);
        }).WaitAsync(Bound);
        Assert.Equal([0, 1, 2], items);
        Assert.Contains("the producer failed after 3 items", e.Message);
        await WaitForNoCallsOnReplicaAsync(cluster).WaitAsync(Bound);
        Assert.Equal(0, Silo(cluster, "Silo_1").ServiceProvider.GetRequiredService<NodeCalls>().RunningStreams);
    }
}
