using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Serve.Isolation;

namespace Serve.Orleans;

/// <summary>
/// Keeps this node's routers told about the replicas other nodes run: every <see cref="ServeClusterOptions.ReplicaRefreshInterval"/>
/// it asks each active node's agent for its replicas and hands each local router the remote replicas of its deployment
/// (<c>DeploymentRouter.SetRemoteReplicas</c>); and when membership declares a node dead it drops that node's replicas
/// from every router at once (<c>DropNode</c>), so no new call goes there and queued calls go to the survivors. Only
/// deployments this node also deploys have a router here (an application deployed with zero replicas is enough).
/// </summary>
internal sealed partial class ClusterReplicaDirectory(
    ServeHost host,
    INodeAgentClient agents,
    IClusterMembershipService membership,
    ILocalSiloDetails localSilo,
    NodeCalls calls,
    IOptions<ServeClusterOptions> options,
    ILogger<ClusterReplicaDirectory> logger) : BackgroundService
{
    private readonly IBoundarySerializer _serializer = host.Options.BoundarySerializer();
    private readonly ServeClusterOptions _options = options.Value;
    // Remote replicas by node and replica id, kept across refreshes so their in-flight counts survive.
    private readonly Dictionary<SiloAddress, Dictionary<string, RemoteReplica>> _known = [];
    private readonly object _lock = new();
    private readonly HashSet<SiloAddress> _dead = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var watching = WatchMembershipAsync(stoppingToken);
        using var timer = new PeriodicTimer(_options.ReplicaRefreshInterval);
        do
        {
            try
            {
                await RefreshAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogRefreshFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        await watching.ConfigureAwait(false);
    }

    /// <summary>Asks every other active node for its replicas and publishes them to the local routers.</summary>
    internal async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var self = localSilo.SiloAddress;
        var snapshot = membership.CurrentSnapshot;
        // A node membership no longer lists at all is gone for good.
        List<SiloAddress> forgotten;
        lock (_lock)
            forgotten = [.. _known.Keys.Where(silo => !snapshot.Members.ContainsKey(silo))];
        foreach (var silo in forgotten)
            NodeFailed(silo);
        var listings = new List<(SiloAddress Silo, ReplicaListing[] Replicas)>();
        foreach (var (silo, member) in snapshot.Members)
        {
            if (silo.Equals(self) || member.Status != SiloStatus.Active)
                continue;
            try
            {
                var replicas = await agents.On(silo).ListReplicasAsync().WaitAsync(_options.ListTimeout, cancellationToken).ConfigureAwait(false);
                listings.Add((silo, replicas));
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Keep what we knew of that node; membership decides whether it is gone.
                LogListFailed(logger, NodeIds.Of(silo), e);
                lock (_lock)
                {
                    if (_known.TryGetValue(silo, out var kept))
                        listings.Add((silo, [.. kept.Values.Select(r => new ReplicaListing(r.Application, r.Deployment, r.ReplicaId, ""))]));
                }
            }
        }
        Publish(listings);
    }

    private void Publish(List<(SiloAddress Silo, ReplicaListing[] Replicas)> listings)
    {
        var byEndpoint = new Dictionary<(string, string), List<Replicas.IReplica>>();
        lock (_lock)
        {
            // A node that is not active (stopping, or suspected) leaves the routers but stays known until membership
            // declares it dead, so that its calls in flight then fail at once (NodeFailed) instead of at Orleans' response timeout.
            foreach (var (silo, replicas) in listings)
            {
                if (_dead.Contains(silo))
                    continue;
                if (!_known.TryGetValue(silo, out var old))
                    old = [];
                var current = new Dictionary<string, RemoteReplica>(StringComparer.Ordinal);
                foreach (var listing in replicas)
                {
                    if (!host.TryGetEndpoint(listing.Application, listing.Deployment, out var endpoint))
                        continue;
                    var key = listing.Application + "\0" + listing.Deployment + "\0" + listing.ReplicaId;
                    if (!old.TryGetValue(key, out var replica))
                        replica = new RemoteReplica(agents, _serializer, silo, endpoint.Definition, listing.Application, listing.Deployment, listing.ReplicaId, NodeIds.Of(localSilo.SiloAddress));
                    if (listing.Version.Length > 0)
                        replica.SetModels(listing.Models);
                    current[key] = replica;
                    if (!byEndpoint.TryGetValue((listing.Application, listing.Deployment), out var list))
                        byEndpoint[(listing.Application, listing.Deployment)] = list = [];
                    list.Add(replica);
                }
                // Replicas the node stopped listing (stopped or replaced there) are gone from the routers; calls in
                // flight to them finish on their own (the node drains them).
                _known[silo] = current;
            }
        }
        foreach (var endpoint in host.Endpoints)
        {
            endpoint.Router.SetRemoteReplicas(byEndpoint.TryGetValue((endpoint.ApplicationName, endpoint.DeploymentName), out var list) ? [.. list] : []);
        }
    }

    private async Task WatchMembershipAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                foreach (var (silo, member) in snapshot.Members)
                {
                    if (member.Status == SiloStatus.Dead)
                        NodeFailed(silo);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A node died: its replicas leave every router now; calls in flight there fail with ReplicaLostException and are retried by their handles.</summary>
    internal void NodeFailed(SiloAddress silo)
    {
        Dictionary<string, RemoteReplica>? replicas;
        lock (_lock)
        {
            if (!_dead.Add(silo))
                return;
            _known.Remove(silo, out replicas);
        }
        if (replicas is not null)
        {
            foreach (var replica in replicas.Values)
                replica.MarkLost();
        }
        var nodeId = NodeIds.Of(silo);
        var dropped = 0;
        foreach (var endpoint in host.Endpoints)
            dropped += endpoint.Router.DropNode(nodeId);
        LogNodeFailed(logger, nodeId, dropped);
        _ = StopStreamsOfAsync(nodeId);
    }

    private async Task StopStreamsOfAsync(string nodeId)
    {
        try
        {
            await calls.StopStreamsOfAsync(nodeId).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogStopStreamsFailed(logger, nodeId, e);
        }
    }

    [LoggerMessage(EventId = 1304, Level = LogLevel.Warning, Message = "Serve cluster: stopping the streams node {Node} consumed before it failed threw")]
    private static partial void LogStopStreamsFailed(ILogger logger, string node, Exception e);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Serve cluster: listing the replicas of other nodes failed; trying again at the next refresh")]
    private static partial void LogRefreshFailed(ILogger logger, Exception e);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Serve cluster: node {Node} did not list its replicas; keeping what was known of it until membership decides")]
    private static partial void LogListFailed(ILogger logger, string node, Exception e);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Serve cluster: node {Node} failed; dropped its {Replicas} replica(s) from this node's routers")]
    private static partial void LogNodeFailed(ILogger logger, string node, int replicas);
}
