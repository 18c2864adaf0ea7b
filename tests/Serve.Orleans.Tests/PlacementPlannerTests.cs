using Serve.Orleans.Placement;

namespace Serve.Orleans.Tests;

/// <summary>The cluster controller's placement: pure, so every rule is checked without a cluster.</summary>
public sealed class PlacementPlannerTests
{
    private static readonly IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Nothing =
        new Dictionary<string, IReadOnlyDictionary<string, int>>();

    private static PlacementNode Node(string id, double cpus = 4, int gpus = 0, string? labels = null, bool accepting = true, string? why = null) =>
        new(id, cpus,
            [.. Enumerable.Range(0, gpus).Select(i => new GpuDevice(i, $"logical GPU {i}", 16L << 30))],
            new Dictionary<string, double>(),
            (labels ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=')).ToDictionary(p => p[0], p => p[1]),
            accepting, why);

    private static PlacementDemand Demand(string key, int replicas, double cpus = 1, double gpus = 0, int? cap = null, string? selector = null,
        IReadOnlySet<string>? nodes = null) =>
        new(key, replicas, cpus, gpus, new Dictionary<string, double>(), cap,
            (selector ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=')).ToDictionary(p => p[0], p => p[1]),
            nodes);

    private static IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Current(string key, params (string Node, int Count)[] placed) =>
        new Dictionary<string, IReadOnlyDictionary<string, int>> { [key] = placed.ToDictionary(p => p.Node, p => p.Count) };

    private static string Show(PlacementPlan plan, string key) =>
        string.Join(",", plan.Assignments[key].OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));

    [Fact]
    public void Spread_puts_one_replica_on_each_node()
    {
        var plan = PlacementPlanner.Plan([Node("a"), Node("b"), Node("c")], [Demand("app/m", 3)], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("a=1,b=1,c=1", Show(plan, "app/m"));
        Assert.Empty(plan.Unschedulable);
    }

    [Fact]
    public void Pack_fills_one_node_before_the_next()
    {
        var plan = PlacementPlanner.Plan([Node("a"), Node("b"), Node("c")], [Demand("app/m", 3)], ReplicaPlacement.Pack, Nothing);
        Assert.Equal("a=3", Show(plan, "app/m"));
        plan = PlacementPlanner.Plan([Node("a"), Node("b"), Node("c")], [Demand("app/m", 6)], ReplicaPlacement.Pack, Nothing);
        Assert.Equal("a=4,b=2", Show(plan, "app/m"));
    }

    [Fact]
    public void Spread_balances_across_deployments_too()
    {
        var plan = PlacementPlanner.Plan([Node("a"), Node("b")], [Demand("app/x", 1), Demand("app/y", 1)], ReplicaPlacement.Spread, Nothing);
        Assert.NotEqual(plan.Assignments["app/x"].Keys.Single(), plan.Assignments["app/y"].Keys.Single());
    }

    [Fact]
    public void MaxReplicasPerNode_caps_each_node_and_says_so_when_replicas_are_left_over()
    {
        var plan = PlacementPlanner.Plan([Node("a"), Node("b")], [Demand("app/m", 3, cap: 1)], ReplicaPlacement.Pack, Nothing);
        Assert.Equal("a=1,b=1", Show(plan, "app/m"));
        var why = plan.Unschedulable["app/m"];
        Assert.StartsWith("Unschedulable: 1 of 3 replica(s) of app/m fit on no node", why);
        Assert.Contains("node a: already runs 1, MaxReplicasPerNode is 1", why);
        Assert.Contains("node b: already runs 1, MaxReplicasPerNode is 1", why);
    }

    [Fact]
    public void NodeSelector_places_only_on_nodes_with_every_label_and_names_the_others()
    {
        var nodes = new[] { Node("a", labels: "zone=a"), Node("b", labels: "zone=b"), Node("c") };
        var plan = PlacementPlanner.Plan(nodes, [Demand("app/m", 2, selector: "zone=a")], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("a=2", Show(plan, "app/m"));
        Assert.Empty(plan.Unschedulable);

        plan = PlacementPlanner.Plan(nodes, [Demand("app/m", 1, selector: "zone=z")], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("", Show(plan, "app/m"));
        var why = plan.Unschedulable["app/m"];
        Assert.Contains("node a: NodeSelector needs label zone=z, the node has zone=a", why);
        Assert.Contains("node c: NodeSelector needs label zone=z, the node has no label 'zone'", why);
    }

    [Fact]
    public void Gpu_replicas_go_only_to_the_node_with_gpus_and_fractions_share_a_device()
    {
        var nodes = new[] { Node("a"), Node("b", gpus: 1), Node("c") };
        var plan = PlacementPlanner.Plan(nodes, [Demand("app/gpu", 2, gpus: 0.5), Demand("app/cpu", 3)], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("b=2", Show(plan, "app/gpu"));
        Assert.Equal(3, plan.Assignments["app/cpu"].Values.Sum());

        plan = PlacementPlanner.Plan(nodes, [Demand("app/gpu", 3, gpus: 0.5)], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("b=2", Show(plan, "app/gpu"));
        var why = plan.Unschedulable["app/gpu"];
        Assert.StartsWith("Unschedulable: 1 of 3 replica(s) of app/gpu fit on no node", why);
        Assert.Contains("node a: needs 0.5 GPU, but the host has no GPU", why);
        Assert.Contains("node b: needs 0.5 GPU, 0 free on gpu0", why);
    }

    [Fact]
    public void Resources_bound_each_node_and_the_reason_names_the_shortage()
    {
        var plan = PlacementPlanner.Plan([Node("a", cpus: 2), Node("b", cpus: 1)], [Demand("app/m", 4, cpus: 1)], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("a=2,b=1", Show(plan, "app/m"));
        Assert.Contains("node b: needs 1 CPU, 0 of 1 free", plan.Unschedulable["app/m"]);
    }

    [Fact]
    public void A_new_plan_keeps_every_replica_where_it_runs_and_adds_only_the_difference()
    {
        // Pack would put all three on one node; the three that run stay where they are.
        var plan = PlacementPlanner.Plan([Node("a"), Node("b"), Node("c")], [Demand("app/m", 4)], ReplicaPlacement.Pack,
            Current("app/m", ("a", 1), ("b", 1), ("c", 1)));
        Assert.Equal(1, plan.Assignments["app/m"]["b"]);
        Assert.Equal(1, plan.Assignments["app/m"]["c"]);
        Assert.Equal(2, plan.Assignments["app/m"]["a"]);
    }

    [Fact]
    public void A_dead_nodes_replicas_are_placed_again_on_the_survivors()
    {
        // c died: it is no longer among the nodes, and its replica goes to a survivor; a and b keep theirs.
        var plan = PlacementPlanner.Plan([Node("a"), Node("b")], [Demand("app/m", 3)], ReplicaPlacement.Spread,
            Current("app/m", ("a", 1), ("b", 1), ("c", 1)));
        Assert.Equal(3, plan.Assignments["app/m"].Values.Sum());
        Assert.False(plan.Assignments["app/m"].ContainsKey("c"));
        Assert.True(plan.Assignments["app/m"]["a"] >= 1 && plan.Assignments["app/m"]["b"] >= 1);
    }

    [Fact]
    public void A_draining_node_keeps_nothing_and_is_named_when_nothing_else_fits()
    {
        var nodes = new[] { Node("a", accepting: false, why: "draining (stopping)"), Node("b", cpus: 1) };
        var plan = PlacementPlanner.Plan(nodes, [Demand("app/m", 2)], ReplicaPlacement.Spread, Current("app/m", ("a", 2)));
        Assert.Equal("b=1", Show(plan, "app/m"));
        Assert.Contains("node a: draining (stopping)", plan.Unschedulable["app/m"]);
    }

    [Fact]
    public void Scaling_down_removes_from_the_busiest_node_under_spread()
    {
        var plan = PlacementPlanner.Plan([Node("a"), Node("b")], [Demand("app/m", 2)], ReplicaPlacement.Spread,
            Current("app/m", ("a", 3), ("b", 1)));
        Assert.Equal("a=1,b=1", Show(plan, "app/m"));
    }

    [Fact]
    public void A_node_that_cannot_run_the_deployment_gets_none_and_is_named()
    {
        var plan = PlacementPlanner.Plan([Node("a"), Node("b")], [Demand("app/m", 2, nodes: new HashSet<string> { "b" })], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("b=2", Show(plan, "app/m"));
        plan = PlacementPlanner.Plan([Node("a"), Node("b")], [Demand("app/m", 1, nodes: new HashSet<string>())], ReplicaPlacement.Spread, Nothing);
        Assert.Contains("node a: cannot run this deployment (another code version of it, or its type is missing there)", plan.Unschedulable["app/m"]);
    }

    [Fact]
    public void An_empty_cluster_says_there_is_no_node_and_zero_replicas_need_nothing()
    {
        var plan = PlacementPlanner.Plan([], [Demand("app/m", 1), Demand("app/none", 0)], ReplicaPlacement.Spread, Nothing);
        Assert.Equal("Unschedulable: 1 of 1 replica(s) of app/m fit on no node: the cluster has no live node", plan.Unschedulable["app/m"]);
        Assert.Empty(plan.Assignments["app/none"]);
        Assert.False(plan.Unschedulable.ContainsKey("app/none"));
    }
}
