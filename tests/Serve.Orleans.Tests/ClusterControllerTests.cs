using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;
using Microsoft.Extensions.Logging;

namespace Serve.Orleans.Tests;

/// <summary>One node's settings in a test cluster: its resources, labels, and the options it deploys WhereAmI with.</summary>
public sealed record NodeSetup(double Cpus = 4, int Gpus = 0, Dictionary<string, string>? Labels = null, Action<DeploymentOptions>? Deployment = null, bool Imposter = false);

/// <summary>Another class deployed under the name WhereAmI: what a node built from other assemblies would run.</summary>
[Deployment]
public sealed partial class Imposter
{
    public string Where(string caller) => $"{caller}->imposter";
}

/// <summary>
/// The cluster controller on Orleans' in-process test cluster: every silo runs <c>AddServe()</c> with the same
/// application and its own logical resources; the controller decides where the replicas run.
/// </summary>
public sealed class ClusterControllerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static async Task<InProcessTestCluster> StartAsync(short silos, Action<DeploymentOptions> deployment, Func<string, NodeSetup>? setup = null, ReplicaPlacement placement = ReplicaPlacement.Spread)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSiloHost((silo, host) =>
        {
            var node = setup?.Invoke(silo.SiloName) ?? new NodeSetup();
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            // Set SERVE_TEST_LOG=1 to see the nodes' Serve logs (dotnet test --logger "console;verbosity=detailed").
            if (Environment.GetEnvironmentVariable("SERVE_TEST_LOG") is not null)
                host.Services.AddLogging(b => b.AddSimpleConsole(c => c.SingleLine = true).AddFilter("Orleans", Microsoft.Extensions.Logging.LogLevel.Warning).AddFilter("Serve", Microsoft.Extensions.Logging.LogLevel.Information));
            var serve = host.Services.AddServe(o =>
                {
                    o.Http.Enabled = false;
                    o.Resources.Cpus = node.Cpus;
                    if (node.Gpus > 0)
                        o.Resources.UseLogicalGpus(node.Gpus, 16L << 30);
                });
            if (node.Imposter)
            {
                serve.AddApplication(Imposter.Bind().WithOptions(o => { o.Name = "WhereAmI"; o.NumReplicas = 0; }));
                return;
            }
            serve.AddApplication(WhereAmI.Bind().WithOptions(o =>
                {
                    deployment(o);
                    node.Deployment?.Invoke(o);
                    // Placed once every node has joined (below): the planner keeps running replicas where they are, so
                    // replicas placed while the first node is alone would stay there.
                    o.NumReplicas = 0;
                }));
        });
        builder.ConfigureSilo((options, silo) =>
        {
            var node = setup?.Invoke(options.SiloName) ?? new NodeSetup();
            silo.AddServeNode(cluster =>
            {
                cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100);
                cluster.Placement = placement;
                foreach (var (k, v) in node.Labels ?? [])
                    cluster.NodeLabels[k] = v;
            });
            TestSilos.UseShortMembershipProbes(silo);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var first = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => first.GetStatus().Nodes.Count == silos, $"all {silos} nodes report to the controller");
        await first.RunAsync(WhereAmI.Bind().WithOptions(o =>
        {
            deployment(o);
            setup?.Invoke("Silo_0").Deployment?.Invoke(o);
        })).WaitAsync(Bound);
        return cluster;
    }

    private static ServeHost Serve(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ServeHost>();

    private static InProcessSiloHandle Silo(InProcessTestCluster cluster, string name) =>
        cluster.Silos.Single(s => s.ServiceProvider.GetRequiredService<NodeName>().Value == name);

    private static string NodeOf(InProcessSiloHandle silo) => silo.SiloAddress.ToParsableString();

    private static DeploymentInfo WhereAmIStatus(ServeHost host) => host.GetDeployment("WhereAmI");

    /// <summary>Running replicas of WhereAmI per node, as the status of <paramref name="host"/> shows the cluster.</summary>
    private static Dictionary<string, int> RunningPerNode(ServeHost host) =>
        WhereAmIStatus(host).Replicas.Where(r => r.State == ReplicaState.Running).GroupBy(r => r.Node!).ToDictionary(g => g.Key, g => g.Count());

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while (!condition())
        {
            if (timeout.IsCancellationRequested)
                Assert.Fail($"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    private static async Task KillAsync(InProcessTestCluster cluster, InProcessSiloHandle silo)
    {
        try
        {
            await cluster.KillSiloAsync(silo).WaitAsync(Bound);
        }
        catch (OperationCanceledException)
        {
            // A kill stops the silo's host with a cancelled token; the silo is gone either way.
        }
    }

    [Fact]
    public async Task Three_replicas_spread_one_per_node_and_every_node_shows_the_whole_cluster()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; });
        var first = Serve(Silo(cluster, "Silo_0"));

        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 3, "three replicas run");

        var perNode = RunningPerNode(first);
        Assert.Equal(cluster.Silos.Select(NodeOf).Order(), perNode.Keys.Order());
        Assert.All(perNode.Values, count => Assert.Equal(1, count));
        // The admin API's status JSON (and the dashboard reading it) names each replica's node and lists the nodes.
        var json = global::Serve.Http.AdminApi.StatusJson(first.GetStatus());
        Assert.Equal(3, json["nodes"]!.AsArray().Count);
        Assert.Equal(perNode.Keys.Order(), json["applications"]![0]!["deployments"]![0]!["replicas"]!.AsArray().Select(r => (string)r!["node"]!).Order());
        foreach (var silo in cluster.Silos)
        {
            var host = Serve(silo);
            await WaitUntilAsync(() => WhereAmIStatus(host).Status == ServeHealth.Healthy, "every node sees the deployment healthy");
            var status = host.GetStatus();
            Assert.Equal(3, status.Nodes.Count);
            Assert.Single(status.Nodes, n => n.IsSelf && n.NodeId == NodeOf(silo));
            Assert.Single(status.Nodes, n => n.IsController);
            Assert.All(status.Nodes, n => Assert.Equal(("active", 4.0), (n.State, n.Cpus)));
            Assert.Equal(3, WhereAmIStatus(host).TargetReplicas);
            // Each node's own replica carries its id; a handle there serves itself (locality).
            Assert.Single(WhereAmIStatus(host).Replicas, r => r.Node == NodeOf(silo));
            Assert.Equal($"x->{silo.ServiceProvider.GetRequiredService<NodeName>().Value}", await host.GetHandle<WhereAmIHandle>("WhereAmI").WhereAsync("x").AsTask().WaitAsync(Bound));
        }
    }

    [Fact]
    public async Task Pack_places_replicas_on_as_few_nodes_as_possible()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; }, placement: ReplicaPlacement.Pack);
        var first = Serve(Silo(cluster, "Silo_0"));

        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 3, "three replicas run");

        Assert.Equal(3, Assert.Single(RunningPerNode(first)).Value);
    }

    [Fact]
    public async Task A_node_selector_places_replicas_only_on_nodes_with_its_labels()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 2; o.NumCpus = 1; o.NodeSelector["zone"] = "b"; },
            name => new NodeSetup(Labels: new() { ["zone"] = name == "Silo_0" ? "a" : "b" }));
        var first = Serve(Silo(cluster, "Silo_0"));

        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 2, "two replicas run");

        Assert.Equal(new[] { NodeOf(Silo(cluster, "Silo_1")), NodeOf(Silo(cluster, "Silo_2")) }.Order(), RunningPerNode(first).Keys.Order());
        Assert.Equal("a", first.GetStatus().Nodes.Single(n => n.IsSelf).Labels["zone"]);

        // One more than the labelled nodes hold: the reason names the node without the label.
        await first.RunAsync(WhereAmI.Bind().WithOptions(o => { o.NumReplicas = 3; o.NumCpus = 1; o.NodeSelector["zone"] = "b"; o.MaxReplicasPerNode = 1; })).WaitAsync(Bound);
        await WaitUntilAsync(() => WhereAmIStatus(first).Message.Contains("Unschedulable"), "the third replica is unschedulable");
        var message = WhereAmIStatus(first).Message;
        Assert.Contains($"node {NodeOf(Silo(cluster, "Silo_0"))}: NodeSelector needs label zone=b, the node has zone=a", message);
        Assert.Contains($"node {NodeOf(Silo(cluster, "Silo_1"))}: already runs 1, MaxReplicasPerNode is 1", message);
        Assert.Equal(2, RunningPerNode(first).Values.Sum());
    }

    [Fact]
    public async Task MaxReplicasPerNode_caps_each_node()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; o.MaxReplicasPerNode = 1; }, placement: ReplicaPlacement.Pack);
        var first = Serve(Silo(cluster, "Silo_0"));

        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 3, "three replicas run");

        // Pack would put all three on one node; the cap spreads them.
        Assert.All(RunningPerNode(first).Values, count => Assert.Equal(1, count));
    }

    [Fact]
    public async Task GPU_replicas_run_only_on_the_node_with_GPUs()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 2; o.NumGpus = 0.5; },
            name => new NodeSetup(Gpus: name == "Silo_2" ? 1 : 0));
        var first = Serve(Silo(cluster, "Silo_0"));

        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 2, "two GPU replicas run");

        Assert.Equal(NodeOf(Silo(cluster, "Silo_2")), Assert.Single(RunningPerNode(first)).Key);
        var gpuNode = Serve(Silo(cluster, "Silo_2"));
        Assert.All(gpuNode.LocalStatus.Applications[0].Deployments[0].Replicas, r => Assert.StartsWith("gpu0 × 0.5", r.Gpu));
        Assert.Single(first.GetStatus().Nodes, n => n.Gpus.Count == 1);
    }

    [Fact]
    public async Task Replicas_that_fit_on_no_node_are_unschedulable_with_each_nodes_reason()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 4; o.NumCpus = 1; }, _ => new NodeSetup(Cpus: 1));
        var first = Serve(Silo(cluster, "Silo_0"));

        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 3 && WhereAmIStatus(first).Message.Contains("Unschedulable"), "three run and one is unschedulable");

        var status = WhereAmIStatus(first);
        Assert.Equal(ServeHealth.Updating, status.Status);
        Assert.Contains("Unschedulable: 1 of 4 replica(s) of default/WhereAmI fit on no node", status.Message);
        foreach (var silo in cluster.Silos)
            Assert.Contains($"node {NodeOf(silo)}: ", status.Message);
        Assert.Contains("CPU", status.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Nodes_running_another_version_or_another_type_are_reported_by_name_and_get_no_replicas()
    {
        await using var cluster = await StartAsync(2, o => { o.NumReplicas = 3; o.NumCpus = 1; o.Version = "v1"; },
            name => new NodeSetup(Cpus: 1, Deployment: name == "Silo_2" ? o => o.Version = "v2" : null, Imposter: name == "Silo_3"));
        var first = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => RunningPerNode(first).Values.Sum() == 2, "two replicas run on the two v1 nodes");

        var late = await cluster.StartAdditionalSiloAsync();
        Assert.Equal("Silo_2", late.ServiceProvider.GetRequiredService<NodeName>().Value);
        var expected = $"Node {NodeOf(late)} runs version v2 of 'default/WhereAmI', the cluster runs v1; deploy the same assemblies on every node";

        await WaitUntilAsync(() => WhereAmIStatus(first).Message.Contains(expected), "the mismatch is reported");
        Assert.Contains(expected, first.GetStatus().Nodes.Single(n => n.NodeId == NodeOf(late)).Message);
        // The late node learns the cluster's view with its next heartbeat's reply.
        await WaitUntilAsync(() => Serve(late).GetStatus().Applications[0].Message.Contains(expected), "the late node's own status reports the mismatch");
        Assert.Equal(2, RunningPerNode(first).Values.Sum());
        Assert.Empty(Serve(late).LocalStatus.Applications[0].Deployments[0].Replicas);

        var other = await cluster.StartAdditionalSiloAsync();
        var wrongType = $"Node {NodeOf(other)} runs {typeof(Imposter).FullName} as deployment 'default/WhereAmI', the cluster runs {typeof(WhereAmI).FullName}; deploy the same assemblies on every node.";
        await WaitUntilAsync(() => WhereAmIStatus(first).Message.Contains(wrongType), "the other type is reported");
        Assert.Empty(Serve(other).LocalStatus.Applications[0].Deployments[0].Replicas);
        Assert.Equal(2, RunningPerNode(first).Values.Sum());
    }

    [Fact]
    public async Task Killing_a_node_under_load_fails_no_call_and_restores_the_replica_count_on_the_survivors()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; });
        var caller = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => RunningPerNode(caller).Values.Sum() == 3, "three replicas run");
        var victim = Silo(cluster, "Silo_1");
        var handle = caller.GetHandle<WhereAmIHandle>("WhereAmI");

        var load = new Load(handle);
        await load.WaitForAsync(20);
        await KillAsync(cluster, victim);

        var survivors = new[] { NodeOf(Silo(cluster, "Silo_0")), NodeOf(Silo(cluster, "Silo_2")) };
        await WaitUntilAsync(() => RunningPerNode(caller) is var perNode && perNode.Values.Sum() == 3 && perNode.Keys.All(survivors.Contains), "three replicas run on the survivors");
        await load.WaitForAsync(load.Count + 20);
        await load.StopAsync();

        Assert.Empty(load.Failures);
        Assert.Equal(2, caller.GetStatus().Nodes.Count);
        Assert.Equal(ServeHealth.Healthy, WhereAmIStatus(caller).Status);
    }

    [Fact]
    public async Task Killing_the_controllers_node_keeps_control_working_and_restarts_no_healthy_replica()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; });
        var any = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => RunningPerNode(any).Values.Sum() == 3, "three replicas run");
        var grains = Silo(cluster, "Silo_0").ServiceProvider.GetRequiredService<IGrainFactory>();
        var controllerNode = await grains.GetGrain<IClusterController>(0).GetNodeAsync().WaitAsync(Bound);
        var victim = cluster.Silos.Single(s => NodeOf(s) == controllerNode);
        var survivors = cluster.Silos.Where(s => s != victim).ToArray();
        var before = survivors.ToDictionary(NodeOf, s => Serve(s).LocalStatus.Applications[0].Deployments[0].Replicas.Select(r => r.ReplicaId).Single());

        await KillAsync(cluster, victim);

        var watcher = Serve(survivors[0]);
        await WaitUntilAsync(() => RunningPerNode(watcher) is var perNode && perNode.Values.Sum() == 3 && perNode.Keys.All(before.ContainsKey), "three replicas run on the survivors");
        var newController = await survivors[0].ServiceProvider.GetRequiredService<IGrainFactory>().GetGrain<IClusterController>(0).GetNodeAsync().WaitAsync(Bound);
        Assert.Contains(newController, before.Keys);
        // The replicas the survivors ran before are still there: the new controller kept them and only added one.
        foreach (var silo in survivors)
            Assert.Contains(before[NodeOf(silo)], Serve(silo).LocalStatus.Applications[0].Deployments[0].Replicas.Select(r => r.ReplicaId));

        // Control keeps working: a redeploy with another replica count on one node changes the cluster's.
        await Serve(survivors[1]).RunAsync(WhereAmI.Bind().WithOptions(o => { o.NumReplicas = 4; o.NumCpus = 1; })).WaitAsync(Bound);
        await WaitUntilAsync(() => RunningPerNode(watcher).Values.Sum() == 4, "four replicas run after scaling");
        Assert.Equal(4, WhereAmIStatus(watcher).TargetReplicas);
    }

    [Fact]
    public async Task A_rolling_update_across_nodes_fails_no_call()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; o.Version = "v1"; }, _ => new NodeSetup(Cpus: 2));
        var caller = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => RunningPerNode(caller).Values.Sum() == 3, "three v1 replicas run");
        var load = new Load(caller.GetHandle<WhereAmIHandle>("WhereAmI"));
        await load.WaitForAsync(20);

        // Each node is redeployed with the new version in turn, as a rolling restart of the nodes would.
        foreach (var name in new[] { "Silo_0", "Silo_1", "Silo_2" })
        {
            var host = Serve(Silo(cluster, name));
            await host.RunAsync(WhereAmI.Bind().WithOptions(o => { o.NumReplicas = 3; o.NumCpus = 1; o.Version = "v2"; })).WaitAsync(Bound);
            await load.WaitForAsync(load.Count + 10);
        }
        await WaitUntilAsync(
            () => WhereAmIStatus(caller) is { } d && d.Replicas.Count == 3 && d.Replicas.All(r => r.Version == "v2" && r.State == ReplicaState.Running),
            "three v2 replicas run and no v1 replica is left");
        await load.WaitForAsync(load.Count + 20);
        await load.StopAsync();

        Assert.Empty(load.Failures);
        Assert.Equal("v2", WhereAmIStatus(caller).Version);
    }

    [Fact]
    public async Task A_stopping_node_moves_its_replicas_to_the_others_first_and_fails_no_call()
    {
        await using var cluster = await StartAsync(3, o => { o.NumReplicas = 3; o.NumCpus = 1; });
        var caller = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => RunningPerNode(caller).Values.Sum() == 3, "three replicas run");
        var leaving = Silo(cluster, "Silo_1");
        var load = new Load(caller.GetHandle<WhereAmIHandle>("WhereAmI"));
        await load.WaitForAsync(20);

        await cluster.StopSiloAsync(leaving).WaitAsync(Bound);

        var survivors = new[] { NodeOf(Silo(cluster, "Silo_0")), NodeOf(Silo(cluster, "Silo_2")) };
        await WaitUntilAsync(() => RunningPerNode(caller) is var perNode && perNode.Values.Sum() == 3 && perNode.Keys.All(survivors.Contains), "three replicas run on the others");
        await load.WaitForAsync(load.Count + 20);
        await load.StopAsync();
        Assert.Empty(load.Failures);
    }

    /// <summary>Four callers calling WhereAmI in a loop until stopped; every failure is kept.</summary>
    private sealed class Load
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task[] _callers;
        private int _count;

        public Load(WhereAmIHandle handle)
        {
            _callers = [.. Enumerable.Range(0, 4).Select(id => Task.Run(async () =>
            {
                var i = 0;
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        await handle.SlowWhereAsync($"{id}.{i++}");
                        Interlocked.Increment(ref _count);
                    }
                    catch (Exception e)
                    {
                        lock (Failures)
                            Failures.Add(e);
                    }
                }
            }))];
        }

        public List<Exception> Failures { get; } = [];

        public int Count => Volatile.Read(ref _count);

        public Task WaitForAsync(int count) => WaitUntilAsync(() => Count >= count, $"{count} calls succeeded");

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_callers).WaitAsync(Bound);
        }
    }
}

public sealed class DrainTimeoutOptionTests
{
    [Fact]
    public void A_negative_drain_timeout_is_refused_naming_the_option()
    {
        var options = new ServeClusterOptions { DrainTimeout = TimeSpan.FromSeconds(-1) };

        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);

        Assert.Contains("ServeClusterOptions.DrainTimeout", e.Message);
        Assert.Equal(TimeSpan.FromSeconds(30), new ServeClusterOptions().DrainTimeout);
    }
}
