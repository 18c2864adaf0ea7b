using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Serve.Orleans.Placement;

namespace Serve.Orleans;

/// <summary>
/// The one controller of a cluster: a grain with a single well-known key (0), not reentrant, so one heartbeat is handled
/// at a time. It keeps the desired state (per deployment: code version, replica count, resources per replica, per-node
/// cap, node selector, config) and the assignment (node → replicas) in grain storage "serve"; every node's heartbeat
/// brings that node's report and takes back its assignment (pull: a lost reply is repaired by the next heartbeat).
/// On activation — first start, or on a survivor after the silo holding it died (the next heartbeat activates it
/// there) — it reads its persisted state and waits until every active node has reported (bounded), so it plans from
/// what each node really runs; the planner keeps existing placements, so no healthy replica is restarted.
/// </summary>
internal sealed partial class ClusterController(
    [PersistentState("cluster", ServeOrleansExtensions.StorageName)] IPersistentState<ClusterState> state,
    IClusterMembershipService membership,
    ILocalSiloDetails localSilo,
    IOptions<ServeClusterOptions> options,
    ILogger<ClusterController> logger) : Grain, IClusterController
{
    private readonly Dictionary<string, NodeReport> _reports = new(StringComparer.Ordinal);
    private readonly ServeClusterOptions _options = options.Value;
    private DateTime _activatedAt;
    private bool _settled;
    private ClusterView _view = ClusterView.Empty;
    private readonly Dictionary<string, string> _logged = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _adminErrors = new(StringComparer.Ordinal);
    private DateTime _adminRecordedAt = DateTime.MinValue;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _activatedAt = DateTime.UtcNow;
        LogActivated(logger, NodeIds.Of(localSilo.SiloAddress), state.State.Deployments.Count, state.State.Assignment.Count);
        return Task.CompletedTask;
    }

    public Task<string> GetNodeAsync() => Task.FromResult(NodeIds.Of(localSilo.SiloAddress));

    public async Task<HeartbeatReply> HeartbeatAsync(NodeReport report)
    {
        _reports[report.NodeId] = report;
        var members = Members();
        foreach (var gone in _reports.Keys.Where(n => !members.ContainsKey(n)).ToList())
            _reports.Remove(gone);
        var changed = DropDeadNodes(members);
        changed |= Adopt(report);
        if (report.AdminError != _adminErrors.GetValueOrDefault(report.NodeId, ""))
        {
            _adminErrors[report.NodeId] = report.AdminError;
            if (report.AdminError.Length > 0)
                LogAdminFailed(logger, report.AdminError);
        }

        if (!_settled)
        {
            // After a take-over, plan only once every active node has said what it runs (bounded: a silo without Serve never reports).
            var waited = DateTime.UtcNow - _activatedAt;
            _settled = members.Where(m => m.Value == SiloStatus.Active).All(m => _reports.ContainsKey(m.Key))
                || waited > 3 * _options.ReplicaRefreshInterval + _options.ListTimeout;
        }
        var plan = _settled && !AwaitingAdminWrite(members) ? Plan(members) : null;
        if (plan is not null)
            changed |= Apply(plan.Value.Assignment);
        if (changed)
            await state.WriteStateAsync().ConfigureAwait(true);
        _view = BuildView(members, plan?.Messages ?? _view.Deployments.ToDictionary(d => ClusterKeys.Of(d.Application, d.Deployment), d => d.Message));

        var mine = new Dictionary<string, int>(StringComparer.Ordinal);
        if (report.Draining || !state.State.Assignment.ContainsKey(report.NodeId))
        {
            // A draining node keeps what it runs until it stops: its replacements start elsewhere first. A node this
            // controller has not planned for yet (just after a take-over) keeps what it runs too: nothing is stopped
            // before the controller knows the whole cluster.
            foreach (var d in report.Deployments)
                mine[d.Key] = d.Assigned;
        }
        else if (state.State.Assignment.TryGetValue(report.NodeId, out var assigned))
        {
            foreach (var (key, count) in assigned)
                mine[key] = count;
        }
        var admin = state.State.Admin;
        return new HeartbeatReply(mine, _view, report.Draining && DrainComplete(report), admin.LogId, admin.Pending(report.AdminLogId, report.AdminApplied));
    }

    public async Task<AdminRecorded> RecordAdminAsync(AdminLogEntry operation, string logId, long applied)
    {
        var before = state.State.Admin.Clone();
        var deployments = new Dictionary<string, DesiredDeployment>(state.State.Deployments, StringComparer.Ordinal);
        var admin = state.State.Admin;
        var entry = admin.Append(operation);
        // What the write removes leaves the desired state at once; nodes that still run it stop when they apply the write.
        foreach (var (key, desired) in state.State.Deployments.ToList())
        {
            if (!admin.Allows(desired.Application))
                state.State.Deployments.Remove(key);
        }
        try
        {
            await state.WriteStateAsync().ConfigureAwait(true);
        }
        catch
        {
            // Not persisted: the write is refused as a whole (the node answers 503), so no node may apply it.
            state.State.Admin = before;
            state.State.Deployments = deployments;
            throw;
        }
        _adminRecordedAt = DateTime.UtcNow;
        LogAdminRecorded(logger, entry.Revision, entry.ToOperation(admin.LogId).Describe(), entry.Node, admin.Entries.Count);
        return new AdminRecorded(admin.LogId, admin.Pending(logId, applied));
    }

    /// <summary>
    /// Just after an admin write, the controller plans once every active node has applied it (bounded like a take-over's
    /// wait): a PUT's new replicas then spread over every node instead of all landing on the node that received it first.
    /// </summary>
    private bool AwaitingAdminWrite(Dictionary<string, SiloStatus> members)
    {
        if (DateTime.UtcNow - _adminRecordedAt > 3 * _options.ReplicaRefreshInterval + _options.ListTimeout)
            return false;
        var admin = state.State.Admin;
        return members.Any(m => m.Value == SiloStatus.Active
            && (!_reports.TryGetValue(m.Key, out var r) || r.AdminLogId != admin.LogId || r.AdminApplied < admin.Revision));
    }

    /// <summary>The nodes membership knows and does not consider dead.</summary>
    private Dictionary<string, SiloStatus> Members()
    {
        var members = new Dictionary<string, SiloStatus>(StringComparer.Ordinal);
        foreach (var (silo, member) in membership.CurrentSnapshot.Members)
        {
            if (member.Status is SiloStatus.Active or SiloStatus.ShuttingDown or SiloStatus.Stopping)
                members[NodeIds.Of(silo)] = member.Status;
        }
        return members;
    }

    /// <summary>A dead node's assignment is dropped at once: its reservations are gone with its PlacementNode, and its replicas are placed again.</summary>
    private bool DropDeadNodes(Dictionary<string, SiloStatus> members)
    {
        var changed = false;
        foreach (var node in state.State.Assignment.Keys.ToList())
        {
            if (members.ContainsKey(node))
                continue;
            state.State.Assignment.Remove(node);
            LogNodeDropped(logger, node);
            changed = true;
        }
        return changed;
    }

    /// <summary>
    /// Takes a node's deployments into the desired state: a deployment the cluster does not know yet, or a node's redeploy
    /// newer than the desired state (the newest change wins). A node's first deployment (at its start) never overrides
    /// what the cluster runs: a node started with other assemblies is reported, not followed.
    /// </summary>
    private bool Adopt(NodeReport report)
    {
        var changed = false;
        var admin = state.State.Admin;
        // A node that has not applied every admin write yet may still run an application a write removed: not adopted.
        var caughtUp = admin.Entries.Count == 0 || (report.AdminLogId == admin.LogId && report.AdminApplied >= admin.Revision);
        // First what the node learned from this controller before (its copy of the desired state): after a take-over
        // whose storage was lost with its node, the nodes' copies rebuild it. A copy older than an admin write that
        // removed the application is not.
        foreach (var known in report.KnownDesired)
        {
            if (!admin.Allows(known.Application))
                continue;
            var key = ClusterKeys.Of(known.Application, known.Deployment);
            if (!state.State.Deployments.TryGetValue(key, out var desired) || known.NewerThan(desired))
            {
                state.State.Deployments[key] = known;
                changed = true;
            }
        }
        foreach (var d in report.Deployments)
        {
            if (!caughtUp && !admin.Allows(d.Application))
                continue;
            var key = d.Key;
            var offered = DesiredDeployment.From(report.NodeId, d);
            if (!state.State.Deployments.TryGetValue(key, out var desired))
            {
                state.State.Deployments[key] = offered;
                LogAdopted(logger, key, d.Version, report.NodeId);
                changed = true;
            }
            else if (d.Revision > 0 && offered.NewerThan(desired))
            {
                if (!desired.Same(d))
                    LogAdopted(logger, key, d.Version, report.NodeId);
                state.State.Deployments[key] = offered;
                changed = true;
            }
        }
        return changed;
    }

    private (Dictionary<string, Dictionary<string, int>> Assignment, Dictionary<string, string> Messages)? Plan(Dictionary<string, SiloStatus> members)
    {
        var nodes = new List<PlacementNode>();
        foreach (var report in _reports.Values.OrderBy(r => r.NodeId, StringComparer.Ordinal))
        {
            var status = members[report.NodeId];
            var reason = report.Draining ? "draining" : status != SiloStatus.Active ? "stopping" : null;
            nodes.Add(new PlacementNode(
                report.NodeId, report.Cpus,
                [.. report.Gpus.Select(g => new GpuDevice(g.Ordinal, g.Name, g.MemoryBytes))],
                report.Custom, report.Labels, reason is null, reason));
        }
        var demands = new List<PlacementDemand>();
        var current = new Dictionary<string, IReadOnlyDictionary<string, int>>(StringComparer.Ordinal);
        var problems = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var keepOld = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var (key, desired) in state.State.Deployments.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var eligible = new HashSet<string>(StringComparer.Ordinal);
            var here = new Dictionary<string, int>(StringComparer.Ordinal);
            var autoscale = 0;
            var runningCurrent = 0;
            foreach (var report in _reports.Values)
            {
                var d = Find(report, desired);
                if (Problem(report, desired, d) is { } problem)
                {
                    (problems.TryGetValue(key, out var list) ? list : problems[key] = []).Add(problem);
                    // A node still on the version the cluster ran before keeps its replicas until the new version runs everywhere it can.
                    if (d is not null && d.Assigned > 0)
                        (keepOld.TryGetValue(key, out var kept) ? kept : keepOld[key] = new(StringComparer.Ordinal))[report.NodeId] = d.Assigned;
                    continue;
                }
                eligible.Add(report.NodeId);
                runningCurrent += d!.Replicas.Count(r => r.State == nameof(ReplicaState.Running) && r.Version == desired.Version);
                autoscale = Math.Max(autoscale, d.AutoscaleTarget ?? 0);
                here[report.NodeId] = state.State.Assignment.TryGetValue(report.NodeId, out var assigned)
                    ? assigned.GetValueOrDefault(key)
                    : d.Assigned;
            }
            // Autoscaling is per node today: the cluster runs the largest of the nodes' autoscaler targets.
            var replicas = desired.Autoscaled ? autoscale : desired.NumReplicas;
            if (keepOld.TryGetValue(key, out var old) && runningCurrent >= replicas)
                keepOld.Remove(key);
            demands.Add(new PlacementDemand(key, replicas, desired.NumCpus, desired.NumGpus, desired.Resources,
                desired.MaxReplicasPerNode, desired.NodeSelector, eligible));
            current[key] = here;
        }
        var plan = PlacementPlanner.Plan(nodes, demands, _options.Placement, current);

        var assignment = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var node in nodes)
            assignment[node.NodeId] = new(StringComparer.Ordinal);
        foreach (var (key, perNode) in plan.Assignments)
        {
            foreach (var (node, count) in perNode)
            {
                if (count > 0 && assignment.TryGetValue(node, out var counts))
                    counts[key] = count;
            }
        }
        foreach (var (key, perNode) in keepOld)
        {
            foreach (var (node, count) in perNode)
                assignment[node][key] = count;
        }
        var messages = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var demand in demands)
        {
            var parts = new List<string>();
            if (problems.TryGetValue(demand.Key, out var list))
                parts.AddRange(list);
            if (plan.Unschedulable.TryGetValue(demand.Key, out var unschedulable))
                parts.Add(unschedulable);
            var message = string.Join(" ", parts);
            messages[demand.Key] = message;
            if (!_logged.TryGetValue(demand.Key, out var last) || last != message)
            {
                _logged[demand.Key] = message;
                if (message.Length > 0)
                    LogProblem(logger, demand.Key, message);
            }
        }
        return (assignment, messages);
    }

    private static DeploymentReport? Find(NodeReport report, DesiredDeployment desired)
    {
        foreach (var d in report.Deployments)
        {
            if (d.Application == desired.Application && d.Deployment == desired.Deployment)
                return d;
        }
        return null;
    }

    /// <summary>Why a node cannot run a deployment at all (it is then left out of its placement), or null.</summary>
    private static string? Problem(NodeReport report, DesiredDeployment desired, DeploymentReport? d)
    {
        if (d is null)
        {
            return report.Deployments.Any(x => x.Application == desired.Application)
                ? $"Node {report.NodeId} does not have deployment '{desired.Deployment}' ({desired.TypeName}) of application '{desired.Application}'; deploy the same assemblies on every node."
                : $"Node {report.NodeId} does not deploy application '{desired.Application}'; add it on every node (AddApplication) so that each can run its replicas.";
        }
        if (d.TypeName != desired.TypeName)
            return $"Node {report.NodeId} runs {d.TypeName} as deployment '{desired.Application}/{desired.Deployment}', the cluster runs {desired.TypeName}; deploy the same assemblies on every node.";
        if (d.Version != desired.Version)
            return $"Node {report.NodeId} runs version {d.Version} of '{desired.Application}/{desired.Deployment}', the cluster runs {desired.Version}; deploy the same assemblies on every node (or redeploy the version you want).";
        return null;
    }

    private bool Apply(Dictionary<string, Dictionary<string, int>> assignment)
    {
        var old = state.State.Assignment;
        var same = old.Count == assignment.Count && assignment.All(p => old.TryGetValue(p.Key, out var o) && o.Count == p.Value.Count && p.Value.All(c => o.TryGetValue(c.Key, out var v) && v == c.Value));
        if (same)
            return false;
        state.State.Assignment = assignment;
        LogAssigned(logger, string.Join("; ", assignment.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}: {string.Join(", ", p.Value.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"))}")));
        return true;
    }

    /// <summary>Every deployment the draining node runs has its planned replicas running on other nodes (or none could be placed).</summary>
    private bool DrainComplete(NodeReport draining)
    {
        foreach (var d in draining.Deployments)
        {
            if (d.Replicas.Length == 0 || !state.State.Deployments.TryGetValue(d.Key, out var desired))
                continue;
            var planned = 0;
            foreach (var (node, counts) in state.State.Assignment)
            {
                if (node != draining.NodeId)
                    planned += counts.GetValueOrDefault(d.Key);
            }
            var running = 0;
            foreach (var report in _reports.Values)
            {
                if (report.NodeId == draining.NodeId || Find(report, desired) is not { } other)
                    continue;
                running += other.Replicas.Count(r => r.State == nameof(ReplicaState.Running));
            }
            if (running < planned)
                return false;
        }
        return true;
    }

    private ClusterView BuildView(Dictionary<string, SiloStatus> members, Dictionary<string, string> messages)
    {
        var nodeProblems = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var deployments = new List<DeploymentView>();
        foreach (var (key, desired) in state.State.Deployments.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var replicas = new List<NodeReplicaView>();
            var target = 0;
            foreach (var report in _reports.Values.OrderBy(r => r.NodeId, StringComparer.Ordinal))
            {
                var d = Find(report, desired);
                if (Problem(report, desired, d) is { } problem)
                    (nodeProblems.TryGetValue(report.NodeId, out var list) ? list : nodeProblems[report.NodeId] = []).Add(problem);
                if (d is null)
                    continue;
                foreach (var r in d.Replicas)
                    replicas.Add(new NodeReplicaView(report.NodeId, r.ReplicaId, r.State, r.Version));
                target = Math.Max(target, d.AutoscaleTarget ?? 0);
            }
            deployments.Add(new DeploymentView(desired.Application, desired.Deployment, desired.Version,
                desired.Autoscaled ? target : desired.NumReplicas, messages.GetValueOrDefault(key, ""), [.. replicas]));
        }
        var nodes = _reports.Values.OrderBy(r => r.NodeId, StringComparer.Ordinal).Select(r => new NodeView(
            r.NodeId,
            r.Draining || members.GetValueOrDefault(r.NodeId) != SiloStatus.Active ? "draining" : "active",
            r.Cpus,
            [.. r.Gpus.Select(g => $"gpu{g.Ordinal} {g.Name} ({g.MemoryBytes} bytes)")],
            r.Custom,
            r.Labels,
            string.Join(" ", (nodeProblems.TryGetValue(r.NodeId, out var list) ? list : new List<string>()).Append(r.AdminError).Where(m => m.Length > 0)))).ToArray();
        return new ClusterView(NodeIds.Of(localSilo.SiloAddress), nodes, [.. deployments],
            [.. state.State.Deployments.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value)]);
    }

    [LoggerMessage(EventId = 1310, Level = LogLevel.Information, Message = "Serve cluster controller active on node {Node}: {Deployments} deployment(s) and the assignment of {Nodes} node(s) read from storage; planning once every node has reported")]
    private static partial void LogActivated(ILogger logger, string node, int deployments, int nodes);

    [LoggerMessage(EventId = 1311, Level = LogLevel.Information, Message = "Serve cluster: {Deployment} now runs version {Version} as node {Node} deployed it")]
    private static partial void LogAdopted(ILogger logger, string deployment, string version, string node);

    [LoggerMessage(EventId = 1312, Level = LogLevel.Warning, Message = "Serve cluster: node {Node} is dead; its replicas are placed on the other nodes")]
    private static partial void LogNodeDropped(ILogger logger, string node);

    [LoggerMessage(EventId = 1313, Level = LogLevel.Information, Message = "Serve cluster: assignment {Assignment}")]
    private static partial void LogAssigned(ILogger logger, string assignment);

    [LoggerMessage(EventId = 1315, Level = LogLevel.Information, Message = "Serve cluster: admin operation {Revision} ({Operation}) received by node {Node} recorded; the admin log holds {Entries} operation(s)")]
    private static partial void LogAdminRecorded(ILogger logger, long revision, string operation, string node, int entries);

    [LoggerMessage(EventId = 1316, Level = LogLevel.Error, Message = "Serve cluster: {Error}")]
    private static partial void LogAdminFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 1314, Level = LogLevel.Warning, Message = "Serve cluster: deployment {Deployment}: {Problem}")]
    private static partial void LogProblem(ILogger logger, string deployment, string problem);
}
