using Serve.Scheduling;

namespace Serve.Orleans.Placement;

/// <summary>One node as the placement planner sees it: what it has, its labels, and whether it takes new replicas.</summary>
/// <param name="NodeId">The node's id (its Orleans silo address).</param>
/// <param name="Cpus">Logical CPUs the node offers (its <c>ServeOptions.Resources.Cpus</c>).</param>
/// <param name="Gpus">Its GPUs, each with its memory.</param>
/// <param name="Custom">Its custom resources (<c>ServeOptions.Resources.Custom</c>).</param>
/// <param name="Labels">Its labels (<c>ServeClusterOptions.NodeLabels</c>).</param>
/// <param name="Accepting">False while the node drains (SIGTERM) or cannot run the application: it keeps nothing new.</param>
/// <param name="NotAcceptingReason">Why it is not accepting, shown in unschedulable reasons (e.g. "draining").</param>
internal sealed record PlacementNode(
    string NodeId,
    double Cpus,
    IReadOnlyList<GpuDevice> Gpus,
    IReadOnlyDictionary<string, double> Custom,
    IReadOnlyDictionary<string, string> Labels,
    bool Accepting = true,
    string? NotAcceptingReason = null);

/// <summary>One deployment's wish: how many replicas, what each needs, and where it may run.</summary>
/// <param name="Key">"application/deployment".</param>
/// <param name="Replicas">The cluster-wide replica count.</param>
/// <param name="NumCpus">CPUs per replica.</param>
/// <param name="NumGpus">GPUs per replica (fractions share one device).</param>
/// <param name="Custom">Custom resources per replica.</param>
/// <param name="MaxReplicasPerNode">At most this many replicas on one node; null for no cap.</param>
/// <param name="NodeSelector">Labels a node must carry (all of them, equal values) to run a replica; empty for any node.</param>
/// <param name="Nodes">The nodes that can run this deployment at all (same code version, type present); null for every node.</param>
internal sealed record PlacementDemand(
    string Key,
    int Replicas,
    double NumCpus,
    double NumGpus,
    IReadOnlyDictionary<string, double> Custom,
    int? MaxReplicasPerNode,
    IReadOnlyDictionary<string, string> NodeSelector,
    IReadOnlySet<string>? Nodes = null);

/// <summary>The planner's answer.</summary>
/// <param name="Assignments">Per deployment key: node id → replica count on that node (nodes with zero left out).</param>
/// <param name="Unschedulable">
/// Per deployment key whose replicas do not all fit: "Unschedulable: k of n replica(s) fit on no node: node X: …; node Y: …"
/// with each node's reason (resources, label, cap, draining, version).
/// </param>
internal sealed record PlacementPlan(
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Assignments,
    IReadOnlyDictionary<string, string> Unschedulable);

/// <summary>
/// Places every deployment's replicas on the cluster's nodes with one <see cref="ResourcePool"/> per node. Pure: the
/// cluster controller calls it with what the nodes report and applies the plan. Stable: replicas already placed stay
/// where they are while that node is alive, accepting, matches the selector, keeps the cap and has the resources, so a
/// new plan never moves a healthy replica; only the difference is added (Spread: the node with the fewest replicas of
/// that deployment, then the most free CPU; Pack: the node with the least free CPU that fits) or removed (Spread: from
/// the node with the most; Pack: from the node with the fewest).
/// </summary>
internal static class PlacementPlanner
{
    /// <param name="nodes">The live nodes.</param>
    /// <param name="demands">Every deployment's wish, in a stable order (larger GPU requests are placed first).</param>
    /// <param name="strategy">Spread (default) or Pack.</param>
    /// <param name="current">Per deployment key: node id → replicas it runs now (or was assigned); missing keys mean none.</param>
    public static PlacementPlan Plan(
        IReadOnlyList<PlacementNode> nodes,
        IReadOnlyList<PlacementDemand> demands,
        ReplicaPlacement strategy,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> current)
        => throw new NotImplementedException("PlacementPlanner.Plan: being written by the lead (issue 13).");
}
