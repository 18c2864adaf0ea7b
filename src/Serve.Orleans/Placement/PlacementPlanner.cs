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
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(demands);
        ArgumentNullException.ThrowIfNull(current);
        var ordered = nodes.OrderBy(n => n.NodeId, StringComparer.Ordinal).ToArray();
        var slots = ordered.Select(n => new NodeSlot(n)).ToArray();
        var work = demands
            .Select(d => new Work(d, ResourceRequest.From(d.NumCpus, d.NumGpus, d.Custom), slots.Length))
            .OrderByDescending(w => w.Request.Gpus).ThenByDescending(w => w.Request.Cpus).ThenBy(w => w.Demand.Key, StringComparer.Ordinal)
            .ToArray();

        // 1. Keep what runs where it may still run, for every deployment before anything new is placed, so that a new
        //    replica never takes the room of one that is already serving.
        foreach (var w in work)
            Keep(w, slots, strategy, current.GetValueOrDefault(w.Demand.Key));

        // 2. Add the difference.
        var unschedulable = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var w in work)
        {
            var missing = Math.Max(0, w.Demand.Replicas) - w.Counts.Sum();
            var placed = 0;
            for (; placed < missing; placed++)
            {
                var best = Pick(w, slots, strategy);
                if (best < 0)
                    break;
                slots[best].Pool.TryReserve(w.Request, out _, out _);
                slots[best].Replicas++;
                w.Counts[best]++;
            }
            if (placed < missing)
                unschedulable[w.Demand.Key] = Explain(w, slots, missing - placed);
        }

        var assignments = new Dictionary<string, IReadOnlyDictionary<string, int>>(StringComparer.Ordinal);
        foreach (var w in work)
        {
            var perNode = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < slots.Length; i++)
            {
                if (w.Counts[i] > 0)
                    perNode[slots[i].Node.NodeId] = w.Counts[i];
            }
            assignments[w.Demand.Key] = perNode;
        }
        return new PlacementPlan(assignments, unschedulable);
    }

    /// <summary>Keeps the replicas <paramref name="now"/> places, as far as the node, the rules and the target allow.</summary>
    private static void Keep(Work w, NodeSlot[] slots, ReplicaPlacement strategy, IReadOnlyDictionary<string, int>? now)
    {
        if (now is null || w.Demand.Replicas <= 0)
            return;
        var keep = new int[slots.Length];
        for (var i = 0; i < slots.Length; i++)
        {
            if (!now.TryGetValue(slots[i].Node.NodeId, out var count) || count <= 0 || Refuses(w.Demand, slots[i].Node) is not null)
                continue;
            keep[i] = w.Demand.MaxReplicasPerNode is { } cap ? Math.Min(count, cap) : count;
        }
        // Over the target: take away where it matters least (Spread: the node with the most; Pack: the one with the fewest).
        for (var excess = keep.Sum() - w.Demand.Replicas; excess > 0; excess--)
        {
            var victim = -1;
            for (var i = 0; i < slots.Length; i++)
            {
                if (keep[i] == 0)
                    continue;
                if (victim < 0
                    || (strategy == ReplicaPlacement.Spread ? keep[i] > keep[victim] : keep[i] < keep[victim])
                    || (keep[i] == keep[victim] && slots[i].Replicas > slots[victim].Replicas))
                    victim = i;
            }
            keep[victim]--;
        }
        for (var i = 0; i < slots.Length; i++)
        {
            for (var k = 0; k < keep[i] && slots[i].Pool.TryReserve(w.Request, out _, out _); k++)
            {
                slots[i].Replicas++;
                w.Counts[i]++;
            }
        }
    }

    /// <summary>The node a new replica of <paramref name="w"/> goes to, or -1 when it fits on none.</summary>
    private static int Pick(Work w, NodeSlot[] slots, ReplicaPlacement strategy)
    {
        var best = -1;
        for (var i = 0; i < slots.Length; i++)
        {
            var slot = slots[i];
            if (Refuses(w.Demand, slot.Node) is not null || AtCap(w, i))
                continue;
            if (!slot.Pool.TryReserve(w.Request, out var trial, out _))
                continue;
            slot.Pool.Release(trial);
            if (best < 0 || Better(w, slots, i, best, strategy))
                best = i;
        }
        return best;
    }

    private static bool Better(Work w, NodeSlot[] slots, int a, int b, ReplicaPlacement strategy)
    {
        if (strategy == ReplicaPlacement.Spread)
        {
            // Fewest replicas of this deployment, then fewest replicas overall, then most free CPU (ordinal order last).
            if (w.Counts[a] != w.Counts[b]) return w.Counts[a] < w.Counts[b];
            if (slots[a].Replicas != slots[b].Replicas) return slots[a].Replicas < slots[b].Replicas;
            return slots[a].Pool.CpuFree > slots[b].Pool.CpuFree;
        }
        // Pack: the node already holding the most replicas, then the least free CPU that still fits.
        if (slots[a].Replicas != slots[b].Replicas) return slots[a].Replicas > slots[b].Replicas;
        return slots[a].Pool.CpuFree < slots[b].Pool.CpuFree;
    }

    private static bool AtCap(Work w, int node) => w.Demand.MaxReplicasPerNode is { } cap && w.Counts[node] >= cap;

    /// <summary>Why <paramref name="node"/> may never run the deployment, whatever its load; null when it may.</summary>
    private static string? Refuses(PlacementDemand demand, PlacementNode node)
    {
        if (!node.Accepting)
            return node.NotAcceptingReason ?? "not accepting replicas";
        if (demand.Nodes is { } allowed && !allowed.Contains(node.NodeId))
            return "cannot run this deployment (another code version of it, or its type is missing there)";
        foreach (var (label, value) in demand.NodeSelector)
        {
            if (!node.Labels.TryGetValue(label, out var has))
                return $"NodeSelector needs label {label}={value}, the node has no label '{label}'";
            if (!string.Equals(has, value, StringComparison.Ordinal))
                return $"NodeSelector needs label {label}={value}, the node has {label}={has}";
        }
        return null;
    }

    private static string Explain(Work w, NodeSlot[] slots, int unplaced)
    {
        var d = w.Demand;
        var head = $"Unschedulable: {unplaced} of {d.Replicas} replica(s) of {d.Key} fit on no node";
        if (slots.Length == 0)
            return head + ": the cluster has no live node";
        var reasons = new List<string>(slots.Length);
        for (var i = 0; i < slots.Length; i++)
        {
            var why = Refuses(d, slots[i].Node);
            if (why is null && AtCap(w, i))
                why = $"already runs {w.Counts[i]}, MaxReplicasPerNode is {d.MaxReplicasPerNode}";
            if (why is null)
            {
                if (slots[i].Pool.TryReserve(w.Request, out var trial, out var lacking))
                    slots[i].Pool.Release(trial);
                else
                    why = lacking.StartsWith("Unschedulable: ", StringComparison.Ordinal) ? lacking["Unschedulable: ".Length..] : lacking;
            }
            reasons.Add($"node {slots[i].Node.NodeId}: {why ?? "fits (placed elsewhere first)"}");
        }
        return head + ": " + string.Join("; ", reasons);
    }

    private sealed class NodeSlot(PlacementNode node)
    {
        public PlacementNode Node { get; } = node;
        public ResourcePool Pool { get; } = new(node.Cpus, node.Gpus, node.Custom,
            "this node reports no GPU: set ServeOptions.Resources.Gpus on the nodes that have them");
        /// <summary>Replicas of every deployment placed on it so far.</summary>
        public int Replicas { get; set; }
    }

    private sealed class Work(PlacementDemand demand, ResourceRequest request, int nodes)
    {
        public PlacementDemand Demand { get; } = demand;
        public ResourceRequest Request { get; } = request;
        /// <summary>Replicas placed per node (same order as the node slots).</summary>
        public int[] Counts { get; } = new int[nodes];
    }
}
