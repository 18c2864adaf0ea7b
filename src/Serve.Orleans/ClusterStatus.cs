using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Serve.Control;

namespace Serve.Orleans;

/// <summary>
/// The cluster layer the Serve host sees (registered in its services, so its controller runs in cluster assignment
/// mode): this node's id, and this node's status with the rest of the cluster added from the controller's last view
/// (every node's replicas, the nodes, and why replicas do not run).
/// </summary>
internal sealed class ClusterStatus(IServiceProvider services) : IClusterLayer
{
    private volatile ClusterView _view = ClusterView.Empty;
    private string? _nodeId;

    public string NodeId => _nodeId ??= NodeIds.Of(services.GetRequiredService<ILocalSiloDetails>().SiloAddress);

    /// <summary>The controller's last view of the cluster.</summary>
    public ClusterView View => _view;

    public void Update(ClusterView view) => _view = view;

    public ServeStatus Describe(ServeStatus local)
    {
        var view = _view;
        var self = NodeId;
        var applications = new List<ApplicationInfo>(local.Applications.Count);
        foreach (var app in local.Applications)
        {
            var deployments = new List<DeploymentInfo>(app.Deployments.Count);
            var messages = new List<string>();
            foreach (var d in app.Deployments)
            {
                var cluster = Array.Find(view.Deployments, v => v.Application == d.ApplicationName && v.Deployment == d.Name);
                var replicas = new List<ReplicaInfo>(d.Replicas.Count);
                foreach (var r in d.Replicas)
                    replicas.Add(r with { Node = self });
                if (cluster is null)
                {
                    deployments.Add(d with { Replicas = replicas });
                    if (d.Message.Length > 0)
                        messages.Add(d.Message);
                    continue;
                }
                foreach (var r in cluster.Replicas)
                {
                    if (r.NodeId != self)
                        replicas.Add(new ReplicaInfo(r.ReplicaId, Enum.TryParse<ReplicaState>(r.State, out var state) ? state : ReplicaState.Starting, r.Version, 0) { Node = r.NodeId });
                }
                var running = replicas.Count(r => r.State == ReplicaState.Running && r.Version == cluster.Version);
                var health = d.Status is ServeHealth.Unhealthy or ServeHealth.Deleting ? d.Status
                    : running == cluster.TargetReplicas && replicas.All(r => r.Version == cluster.Version) ? ServeHealth.Healthy
                    : ServeHealth.Updating;
                var message = string.Join(" ", new[] { d.Message, cluster.Message }.Where(m => m.Length > 0));
                if (message.Length > 0)
                    messages.Add(message);
                deployments.Add(d with { Replicas = replicas, Message = message, Status = health, TargetReplicas = cluster.TargetReplicas });
            }
            var appHealth = app.Status is ServeHealth.Deleting ? app.Status
                : deployments.Any(d => d.Status == ServeHealth.Unhealthy) ? ServeHealth.Unhealthy
                : deployments.All(d => d.Status == ServeHealth.Healthy) ? ServeHealth.Healthy
                : ServeHealth.Updating;
            applications.Add(app with { Deployments = deployments, Status = appHealth, Message = string.Join(" ", messages) });
        }
        var nodes = view.Nodes.Select(n => new NodeInfo(n.NodeId, n.State, n.Cpus, n.Gpus, n.Custom, n.Labels, n.Message)
        {
            IsController = n.NodeId == view.ControllerNode,
            IsSelf = n.NodeId == self,
        }).ToArray();
        return new ServeStatus(applications) { Nodes = nodes };
    }

    public async Task<IReadOnlyList<AdminOperation>> RecordAdminAsync(AdminOperation operation, AdminApplied applied, CancellationToken cancellationToken)
    {
        var timeout = services.GetRequiredService<IOptions<ServeClusterOptions>>().Value.ListTimeout;
        var controller = services.GetRequiredService<IGrainFactory>().GetGrain<IClusterController>(0);
        AdminRecorded recorded;
        try
        {
            recorded = await controller.RecordAdminAsync(AdminLogEntry.From(operation), applied.LogId, applied.Revision)
                .WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new ClusterUnavailableException(
                $"Node {NodeId}: the Serve cluster controller did not answer within ServeClusterOptions.ListTimeout ({timeout}) to record this {operation.Describe()}, " +
                "so this node applied nothing. If the controller records it late, every node (this one too) applies it with its next heartbeat; " +
                "check with GET /api/serve/applications, and send the write again once the cluster has settled (or raise ServeClusterOptions.ListTimeout).", e);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new ClusterUnavailableException(
                $"Node {NodeId} cannot reach the Serve cluster controller to record this {operation.Describe()} ({e.GetType().Name}: {e.Message}); " +
                "nothing was changed on any node. Send the write again once the cluster has settled (GET /api/serve/applications lists the nodes).", e);
        }
        return [.. recorded.Pending.Select(e => e.ToOperation(recorded.LogId))];
    }
}
