using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Serve.Control;

namespace Serve.Orleans;

/// <summary>
/// This node's side of the cluster controller: every <see cref="ServeClusterOptions.ReplicaRefreshInterval"/> it reports
/// to the controller grain (resources, labels, the deployments its host deploys with their versions and options, the
/// replicas it runs, whether it drains) and applies the assignment in the reply to its host (how many replicas of each
/// deployment run here). The same heartbeat re-activates the controller on a survivor after its node died. When the
/// host stops it drains: it reports so, and waits (at most <see cref="ServeClusterOptions.DrainTimeout"/>) until the
/// replacements of its replicas run on other nodes, before the host stops them.
/// </summary>
internal sealed partial class ClusterNode(
    ServeHost host,
    IGrainFactory grains,
    ILocalSiloDetails localSilo,
    IClusterMembershipService membership,
    ClusterStatus status,
    IOptions<ServeClusterOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<ClusterNode> logger) : BackgroundService
{
    private readonly ServeClusterOptions _options = options.Value;
    private Dictionary<string, int>? _applied;
    private volatile bool _draining;
    private string _lastProblem = "";
    private readonly SemaphoreSlim _beat = new(1, 1);
    // A node declared dead wakes the heartbeat, so the controller re-plans at once instead of at the next interval.
    private readonly System.Threading.Channels.Channel<bool> _wake = System.Threading.Channels.Channel.CreateBounded<bool>(
        new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });
    // The admin writes a heartbeat brought, applied apart from the heartbeat (a deploy may wait for replicas the next
    // heartbeats assign); only the newest batch is kept: each holds everything this node has not applied yet.
    private readonly System.Threading.Channels.Channel<AdminOperation[]> _adminWrites = System.Threading.Channels.Channel.CreateBounded<AdminOperation[]>(
        new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropOldest });

    private IClusterController Controller => grains.GetGrain<IClusterController>(0);

    private string NodeId => NodeIds.Of(localSilo.SiloAddress);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var stopping = lifetime.ApplicationStopping.Register(() => _draining = true);
        var watching = WatchMembershipAsync(stoppingToken);
        var applying = ApplyAdminWritesAsync(stoppingToken);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await BeatAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    // The controller's node may have died: the next heartbeat activates it on a survivor.
                    LogHeartbeatFailed(logger, e.GetType().Name, e.Message);
                }
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                wait.CancelAfter(_options.ReplicaRefreshInterval);
                try
                {
                    await _wake.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    // The interval passed.
                }
            }
        }
        finally
        {
            await watching.ConfigureAwait(false);
            await applying.ConfigureAwait(false);
        }
    }

    private async Task ApplyAdminWritesAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            await foreach (var batch in _adminWrites.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // Failures are reported by the applier (this node's status and log) and never retried.
                await host.AdminWrites.ApplyLogAsync(batch, cancellationToken).ConfigureAwait(false);
                // Report at once what this node now deploys, so the controller plans with it.
                _wake.Writer.TryWrite(true);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task WatchMembershipAsync(CancellationToken cancellationToken)
    {
        var dead = new HashSet<SiloAddress>();
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                foreach (var (silo, member) in snapshot.Members)
                {
                    if (member.Status == SiloStatus.Dead && dead.Add(silo))
                        _wake.Writer.TryWrite(true);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One heartbeat: report, apply the assignment, keep the cluster view for the status. True when a draining node may stop.</summary>
    internal async Task<bool> BeatAsync(CancellationToken cancellationToken)
    {
        await _beat.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var reply = await Controller.HeartbeatAsync(Report()).WaitAsync(_options.ListTimeout, cancellationToken).ConfigureAwait(false);
            status.Update(reply.View);
            ReportOwnProblems(reply.View);
            if (reply.AdminOperations.Length > 0)
            {
                var applied = host.AdminWrites.Applied;
                var pending = reply.AdminOperations.Select(e => e.ToOperation(reply.AdminLogId)).Where(o => !applied.Covers(o)).ToArray();
                if (pending.Length > 0)
                    _adminWrites.Writer.TryWrite(pending);
            }
            if (_applied is null || !Same(_applied, reply.Assignment))
            {
                var counts = new Dictionary<(string App, string Deployment), int>();
                foreach (var registration in host.ClusterRegistrations)
                {
                    if (reply.Assignment.TryGetValue(ClusterKeys.Of(registration.Application, registration.Deployment), out var count))
                        counts[(registration.Application, registration.Deployment)] = count;
                }
                await host.AssignAsync(counts, cancellationToken).ConfigureAwait(false);
                // A count for a deployment this host does not have yet is applied again at the next heartbeat.
                _applied = counts.Count == reply.Assignment.Count ? reply.Assignment : null;
            }
            return reply.DrainComplete;
        }
        finally
        {
            _beat.Release();
        }
    }

    private static bool Same(Dictionary<string, int> a, Dictionary<string, int> b) =>
        a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var v) && v == p.Value);

    private void ReportOwnProblems(ClusterView view)
    {
        var self = NodeId;
        var problem = view.Nodes.FirstOrDefault(n => n.NodeId == self)?.Message ?? "";
        if (problem == _lastProblem)
            return;
        _lastProblem = problem;
        if (problem.Length > 0)
            LogOwnProblem(logger, problem);
    }

    internal NodeReport Report()
    {
        // Read before the deployments: a write marked applied has changed them already.
        var applied = host.AdminWrites.Applied;
        var pool = host.ResourcePool;
        var deployments = new List<DeploymentReport>();
        foreach (var r in host.ClusterRegistrations)
        {
            var (cap, selector) = PlacementOf(r.Options);
            deployments.Add(new DeploymentReport(
                r.Application, r.Deployment, r.TypeName, r.Version, r.Options.NumReplicas, r.Options.Autoscaling is not null, r.AutoscaleTarget,
                r.Options.NumCpus, r.Options.NumGpus, new Dictionary<string, double>(r.Options.Resources, StringComparer.Ordinal),
                cap, selector, r.ConfigJson, r.Revision, r.ChangedAt, r.Assigned,
                [.. r.Replicas.Select(x => new ReplicaReport(x.ReplicaId, x.State.ToString(), x.Version))]));
        }
        return new NodeReport(
            NodeId, pool.CpuCapacity,
            [.. pool.Gpus.Select(g => new GpuReport(g.Ordinal, g.Name, g.MemoryBytes))],
            new Dictionary<string, double>(host.Options.Resources.Custom, StringComparer.Ordinal),
            new Dictionary<string, string>(_options.NodeLabels, StringComparer.Ordinal),
            _draining,
            [.. deployments],
            status.View.Desired,
            applied.LogId,
            applied.Revision,
            host.AdminWrites.Error);
    }

    /// <summary>A deployment's per-node cap and node selector (DeploymentOptions.MaxReplicasPerNode, NodeSelector).</summary>
    private static (int? MaxReplicasPerNode, Dictionary<string, string> NodeSelector) PlacementOf(DeploymentOptions options) =>
        (options.MaxReplicasPerNode > 0 ? options.MaxReplicasPerNode : null, new Dictionary<string, string>(options.NodeSelector, StringComparer.Ordinal));

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // A killed node (cancelled token) stops at once; a stopping one first moves its replicas to other nodes.
        if (!cancellationToken.IsCancellationRequested && host.ClusterRegistrations.Any(r => r.Replicas.Length > 0))
            await DrainAsync(cancellationToken).ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reports draining until the controller says this node's replicas run elsewhere; bounded by DrainTimeout and the host's stop token.</summary>
    internal async Task DrainAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        LogDraining(logger, NodeId, _options.DrainTimeout);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(_options.DrainTimeout);
        try
        {
            while (true)
            {
                try
                {
                    if (await BeatAsync(bounded.Token).ConfigureAwait(false))
                    {
                        LogDrained(logger, NodeId);
                        return;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogHeartbeatFailed(logger, e.GetType().Name, e.Message);
                }
                await Task.Delay(_options.ReplicaRefreshInterval, bounded.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            LogDrainTimedOut(logger, NodeId, _options.DrainTimeout);
        }
    }

    [LoggerMessage(EventId = 1320, Level = LogLevel.Warning, Message = "Serve cluster: the heartbeat to the cluster controller failed ({Error}: {Message}); trying again at the next one")]
    private static partial void LogHeartbeatFailed(ILogger logger, string error, string message);

    [LoggerMessage(EventId = 1321, Level = LogLevel.Error, Message = "Serve cluster: this node gets no replicas of some deployments: {Problem}")]
    private static partial void LogOwnProblem(ILogger logger, string problem);

    [LoggerMessage(EventId = 1322, Level = LogLevel.Information, Message = "Serve cluster: node {Node} is draining: its replicas move to other nodes before it stops (at most {Timeout})")]
    private static partial void LogDraining(ILogger logger, string node, TimeSpan timeout);

    [LoggerMessage(EventId = 1323, Level = LogLevel.Information, Message = "Serve cluster: node {Node} drained: the replacements of its replicas run on other nodes")]
    private static partial void LogDrained(ILogger logger, string node);

    [LoggerMessage(EventId = 1324, Level = LogLevel.Warning, Message = "Serve cluster: node {Node} stops before the replacements of all its replicas run elsewhere (ServeClusterOptions.DrainTimeout = {Timeout})")]
    private static partial void LogDrainTimedOut(ILogger logger, string node, TimeSpan timeout);
}
