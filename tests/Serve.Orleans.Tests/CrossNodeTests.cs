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

    /// <summary>What the HTTP ingress calls.</summary>
    public string Call(string caller) => Where(caller);

    public async Task<int> AddAsync(int a, int b)
    {
        await Task.Yield();
        return a + b;
    }

    public void Touch()
    {
    }

    public async IAsyncEnumerable<string> Count(int n, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return $"{i}@{node.Value}";
        }
    }

    /// <summary>Calls of <see cref="HeldWhereAsync"/> on the node named here wait for <see cref="Gate"/>.</summary>
    public static volatile string HoldOn = "";
    public static volatile TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<string> HeldWhereAsync(string caller, CancellationToken cancellationToken)
    {
        if (node.Value == HoldOn)
            await Gate.Task.WaitAsync(cancellationToken);
        return Where(caller);
    }

    // Long enough that a node killed under load has calls in flight.
    public async Task<string> SlowWhereAsync(string caller)
    {
        await Task.Delay(30);
        return Where(caller);
    }
}

/// <summary>
/// Serve on Orleans' in-process test cluster: every silo runs <c>AddServe()</c> with the same application; the first
/// silo ("Silo_0") runs it with zero replicas, so each call from a handle there crosses to another node.
/// </summary>
public sealed class CrossNodeTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static async Task<InProcessTestCluster> StartAsync(short silos, bool retryOnNodeFailure = true, int? maxOngoingRequests = null, bool httpOnFirstNode = false, string[]? withoutReplicas = null)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            // Several nodes share this process: no HTTP ingress, whose default port they would all want (or one, on a free port).
            var http = httpOnFirstNode && silo.SiloName == "Silo_0";
            // The cluster controller places the replicas: one "slot" on each node that should run one, none elsewhere.
            var without = withoutReplicas ?? ["Silo_0"];
            host.Services.AddServe(o =>
                {
                    o.Http.Enabled = http;
                    o.Http.Port = 0;
                    if (!without.Contains(silo.SiloName))
                        o.Resources.Custom["slot"] = 1;
                })
                .AddApplication(WhereAmI.Bind().WithOptions(o =>
                {
                    o.NumReplicas = silos - without.Length;
                    o.Resources["slot"] = 1;
                    o.RetryOnNodeFailure = retryOnNodeFailure;
                    if (maxOngoingRequests is { } max)
                        o.MaxOngoingRequests = max;
                }));
        });
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddServeNode(cluster => cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100));
            TestSilos.UseShortMembershipProbes(silo);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static async Task KillAsync(InProcessTestCluster cluster, InProcessSiloHandle silo)
    {
        try
        {
            await cluster.KillSiloAsync(silo).WaitAsync(Bound);
        }
        catch (OperationCanceledException)
        {
            // A kill stops the silo's host with a cancelled token; ServeHost.ShutdownAsync stops waiting for its drain
            // and says so. The silo is gone either way.
        }
    }

    /// <summary>
    /// Starts calls until <paramref name="count"/> of them are held on the replica of <paramref name="node"/> (the others
    /// complete elsewhere). More than one is a matter of luck: the router sends the next call to the less busy replica.
    /// </summary>
    private static async Task<List<Task<string>>> HoldCallsAsync(WhereAmIHandle handle, ServeHost node, int count)
    {
        var replica = node.GetHandle("WhereAmI").Endpoint.Router.Replicas.Single(r => r.IsLocal);
        var calls = new List<Task<string>>();
        using var timeout = new CancellationTokenSource(Bound);
        while (replica.Ongoing < count)
        {
            calls.Add(handle.HeldWhereAsync("held" + calls.Count).AsTask());
            await Task.Delay(5, timeout.Token);
        }
        return calls;
    }

    [Fact]
    public async Task A_call_in_flight_on_a_killed_node_is_retried_once_on_a_survivor()
    {
        await using var cluster = await StartAsync(3);
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 2).WaitAsync(Bound);
        WhereAmI.Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        WhereAmI.HoldOn = "Silo_1";
        var kill = Task.CompletedTask;
        try
        {
            var calls = await HoldCallsAsync(primary.GetHandle<WhereAmIHandle>("WhereAmI"), Serve(Silo(cluster, "Silo_1")), 1);

            // Not awaited yet: an in-process kill waits for the dead node's own drain, which waits for the held calls.
            kill = KillAsync(cluster, Silo(cluster, "Silo_1"));

            var answers = await Task.WhenAll(calls).WaitAsync(Bound);
            Assert.Equal(calls.Count, answers.Length);
            Assert.All(answers, a => Assert.EndsWith("->Silo_2", a));
        }
        finally
        {
            WhereAmI.HoldOn = "";
            WhereAmI.Gate.TrySetResult();
            await kill;
        }
    }

    [Fact]
    public async Task With_RetryOnNodeFailure_off_a_call_lost_with_its_node_fails_naming_deployment_replica_and_node()
    {
        await using var cluster = await StartAsync(3, retryOnNodeFailure: false);
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 2).WaitAsync(Bound);
        WhereAmI.Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        WhereAmI.HoldOn = "Silo_1";
        var kill = Task.CompletedTask;
        try
        {
            var victim = Silo(cluster, "Silo_1");
            var calls = await HoldCallsAsync(primary.GetHandle<WhereAmIHandle>("WhereAmI"), Serve(victim), 1);
            var held = calls.Where(c => !c.IsCompleted).ToArray();

            kill = KillAsync(cluster, victim);

            var e = await Assert.ThrowsAsync<ReplicaLostException>(() => Task.WhenAll(held).WaitAsync(Bound));
            Assert.Equal("WhereAmI", e.DeploymentName);
            Assert.Equal(victim.SiloAddress.ToParsableString(), e.NodeId);
            Assert.Contains(e.NodeId, e.Message);
            Assert.Contains(e.ReplicaId, e.Message);
        }
        finally
        {
            WhereAmI.HoldOn = "";
            WhereAmI.Gate.TrySetResult();
            await kill;
        }
    }

    private static ServeHost Serve(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ServeHost>();

    // Silos after the first start together, so their order in cluster.Silos says nothing about their names.
    private static InProcessSiloHandle Silo(InProcessTestCluster cluster, string name) =>
        cluster.Silos.Single(s => s.ServiceProvider.GetRequiredService<NodeName>().Value == name);

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
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);

        var handle = primary.GetHandle<WhereAmIHandle>("WhereAmI");
        Assert.Equal("a->Silo_1", await handle.WhereAsync("a").AsTask().WaitAsync(Bound));
        Assert.Equal(5, await handle.AddAsync(2, 3).AsTask().WaitAsync(Bound));
        await handle.TouchAsync().AsTask().WaitAsync(Bound);
        Assert.Equal("b->Silo_1", await primary.GetHandle("WhereAmI").InvokeAsync("Where", ["b"]).AsTask().WaitAsync(Bound));

        // Locality: the node that runs a replica serves its own handle's calls itself.
        var secondary = Serve(Silo(cluster, "Silo_1")).GetHandle<WhereAmIHandle>("WhereAmI");
        Assert.Equal("c->Silo_1", await secondary.WhereAsync("c").AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_stream_crosses_nodes_and_a_consumer_leaving_early_frees_the_remote_slot()
    {
        await using var cluster = await StartAsync(2);
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);
        var handle = primary.GetHandle<WhereAmIHandle>("WhereAmI");

        var items = new List<string>();
        await foreach (var item in handle.CountAsync(3).WithCancellation(default))
            items.Add(item);
        Assert.Equal(["0@Silo_1", "1@Silo_1", "2@Silo_1"], items);

        await foreach (var item in handle.CountAsync(1000).WithCancellation(default))
        {
            Assert.Equal("0@Silo_1", item);
            break;
        }
        var replica = Serve(Silo(cluster, "Silo_1")).GetHandle("WhereAmI").Endpoint.Router.Replicas.Single(r => r.IsLocal);
        using var timeout = new CancellationTokenSource(Bound);
        while (replica.Ongoing != 0)
            await Task.Delay(10, timeout.Token);
    }

    [Fact]
    public async Task A_replica_full_with_its_own_nodes_calls_refuses_remote_ones_which_fail_with_BackPressure_after_bounded_retries()
    {
        await using var cluster = await StartAsync(2, maxOngoingRequests: 1);
        var primary = Serve(Silo(cluster, "Silo_0"));
        var owner = Serve(Silo(cluster, "Silo_1"));
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);
        WhereAmI.Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        WhereAmI.HoldOn = "Silo_1";
        Task<string>? held = null;
        try
        {
            // The owner's own handle takes the replica's only slot; the primary's router does not know (it counts only
            // its own calls), so its call reaches the owner's agent, which refuses it every time.
            held = owner.GetHandle<WhereAmIHandle>("WhereAmI").HeldWhereAsync("local").AsTask();
            var replica = owner.GetHandle("WhereAmI").Endpoint.Router.Replicas.Single(r => r.IsLocal);
            using (var timeout = new CancellationTokenSource(Bound))
            {
                while (replica.Ongoing == 0)
                    await Task.Delay(5, timeout.Token);
            }

            var e = await Assert.ThrowsAsync<BackPressureException>(() => primary.GetHandle<WhereAmIHandle>("WhereAmI").WhereAsync("remote").AsTask().WaitAsync(Bound));
            Assert.Contains("'WhereAmI'", e.Message);
            Assert.Contains($"refused this call {DeploymentHandle.MaxRefusals} times", e.Message);
        }
        finally
        {
            WhereAmI.HoldOn = "";
            WhereAmI.Gate.TrySetResult();
        }
        Assert.Equal("local->Silo_1", await held!.WaitAsync(Bound));
        Assert.Equal("remote->Silo_1", await primary.GetHandle<WhereAmIHandle>("WhereAmI").WhereAsync("remote").AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task Cancelling_a_call_cancels_the_method_on_the_other_node_and_frees_its_slot()
    {
        await using var cluster = await StartAsync(2);
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);
        var replica = Serve(Silo(cluster, "Silo_1")).GetHandle("WhereAmI").Endpoint.Router.Replicas.Single(r => r.IsLocal);
        WhereAmI.Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        WhereAmI.HoldOn = "Silo_1";
        try
        {
            using var cancel = new CancellationTokenSource();
            var call = primary.GetHandle<WhereAmIHandle>("WhereAmI").HeldWhereAsync("x", cancel.Token).AsTask();
            using (var timeout = new CancellationTokenSource(Bound))
            {
                while (replica.Ongoing == 0)
                    await Task.Delay(5, timeout.Token);
            }

            cancel.Cancel();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound));
            // The gate never opened: the slot is free because the method itself was cancelled on its node.
            using var freed = new CancellationTokenSource(Bound);
            while (replica.Ongoing != 0)
                await Task.Delay(5, freed.Token);
            Assert.False(WhereAmI.Gate.Task.IsCompleted);
        }
        finally
        {
            WhereAmI.HoldOn = "";
            WhereAmI.Gate.TrySetResult();
        }
    }

    [Fact]
    public async Task An_HTTP_request_to_a_node_without_replicas_is_served_by_another_node()
    {
        await using var cluster = await StartAsync(2, httpOnFirstNode: true);
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 1).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = primary.HttpAddress, Timeout = Bound };

        var response = await http.PostAsync("/", new StringContent("[\"web\"]", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("web->Silo_1", await response.Content.ReadAsStringAsync());

        // Bound on the node that took the request, as a local call would be: a body that does not fit is its 400.
        var bad = await http.PostAsync("/", new StringContent("[42]", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("caller", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_stream_whose_consuming_node_dies_is_stopped_on_the_producing_node()
    {
        await using var cluster = await StartAsync(3, withoutReplicas: ["Silo_0", "Silo_1"]);
        var consumerSilo = Silo(cluster, "Silo_1");
        var consumer = Serve(consumerSilo);
        await WaitForRemoteReplicasAsync(consumer, 1).WaitAsync(Bound);
        var producer = Silo(cluster, "Silo_2");
        var replica = Serve(producer).GetHandle("WhereAmI").Endpoint.Router.Replicas.Single(r => r.IsLocal);

        var items = consumer.GetHandle<WhereAmIHandle>("WhereAmI").CountAsync(1_000_000).GetAsyncEnumerator();
        Assert.True(await items.MoveNextAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("0@Silo_2", items.Current);
        Assert.Equal(1, replica.Ongoing);

        // The consumer never comes back for more, nor says it is done: its node dies.
        await KillAsync(cluster, consumerSilo);

        using var timeout = new CancellationTokenSource(Bound);
        while (replica.Ongoing != 0)
            await Task.Delay(10, timeout.Token);
        Assert.Equal(0, producer.ServiceProvider.GetRequiredService<NodeCalls>().RunningStreams);
    }

    [Fact]
    public async Task Calls_keep_succeeding_when_a_node_holding_replicas_is_killed()
    {
        await using var cluster = await StartAsync(3);
        var primary = Serve(Silo(cluster, "Silo_0"));
        await WaitForRemoteReplicasAsync(primary, 2).WaitAsync(Bound);
        var handle = primary.GetHandle<WhereAmIHandle>("WhereAmI");
        var victim = Silo(cluster, "Silo_1");
        const string survivorName = "Silo_2";

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
                    var answer = await handle.SlowWhereAsync($"{id}.{i++}");
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
        while (true)
        {
            lock (results)
            {
                if (results.Count >= 20)
                    break;
            }
            await Task.Delay(10).WaitAsync(Bound);
        }

        await KillAsync(cluster, victim);
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
        {
            Assert.Contains(results.Take(before), x => x.EndsWith("->Silo_1", StringComparison.Ordinal));
            Assert.All(results.Skip(before), x => Assert.EndsWith("->" + survivorName, x));
        }
    }
}

public sealed class ServeClusterOptionsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void A_refresh_interval_that_is_not_positive_is_refused_naming_the_option(int milliseconds)
    {
        var options = new ServeClusterOptions { ReplicaRefreshInterval = TimeSpan.FromMilliseconds(milliseconds) };

        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);

        Assert.Contains("ServeClusterOptions.ReplicaRefreshInterval", e.Message);
        Assert.Contains("positive", e.Message);
    }

    [Fact]
    public void A_node_label_without_a_name_is_refused()
    {
        var options = new ServeClusterOptions();
        options.NodeLabels[" "] = "a";

        var e = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("NodeLabels", e.Message);
    }

    [Fact]
    public void The_defaults_are_valid()
    {
        var options = new ServeClusterOptions();
        options.Validate();
        Assert.Equal(ReplicaPlacement.Spread, options.Placement);
        Assert.Equal(TimeSpan.FromSeconds(1), options.ReplicaRefreshInterval);
    }
}
