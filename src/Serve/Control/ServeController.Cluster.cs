namespace Serve.Control;

// Cluster assignment mode: on a node of a cluster (a registered IClusterLayer) the cluster controller decides how many
// replicas of each deployment run here; this loop starts and stops them with the same machinery as on one host.
internal sealed partial class ServeController
{
    private readonly bool _clusterAssigned;
    private IReadOnlyDictionary<(string App, string Deployment), int> _assignments = new Dictionary<(string, string), int>();
    private volatile IReadOnlyList<DeploymentRegistration> _registrations = [];

    /// <summary>True when the cluster controller, not NumReplicas or the autoscaler, sets each deployment's replica count here.</summary>
    public bool ClusterAssigned => _clusterAssigned;

    /// <summary>What this node deploys, as the cluster controller needs it (published with the status).</summary>
    public IReadOnlyList<DeploymentRegistration> Registrations => _registrations;

    /// <summary>This host's resource pool (what it offers; the cluster controller plans with it).</summary>
    public Scheduling.ResourcePool ResourcePool => _resources;

    /// <summary>
    /// Sets how many replicas of each deployment run on this node (a deployment not named gets none) and reconciles.
    /// Only in cluster assignment mode.
    /// </summary>
    public Task AssignAsync(IReadOnlyDictionary<(string App, string Deployment), int> counts, CancellationToken cancellationToken)
    {
        if (!_clusterAssigned)
            return Task.FromException(new InvalidOperationException("Replica counts are assigned only on a node of a cluster (UseOrleans/AddServeNode)."));
        return Ask(done => new Assign(counts, done), cancellationToken);
    }

    private int AssignedTo(string application, string deployment) =>
        _assignments.TryGetValue((application, deployment), out var count) ? count : 0;

    private void OnAssign(IReadOnlyDictionary<(string App, string Deployment), int> counts, TaskCompletionSource done)
    {
        _assignments = counts;
        foreach (var app in _apps.Values.ToList())
        {
            var changed = false;
            foreach (var d in app.Deployments.Values)
            {
                var count = AssignedTo(app.Name, d.Name);
                if (d.AssignedReplicas == count)
                    continue;
                Log.ReplicasAssigned(_logger, app.Name, d.Name, d.AssignedReplicas, count);
                d.AssignedReplicas = count;
                changed = true;
                Reconcile(d);
            }
            if (changed)
                CheckApplication(app);
        }
        done.TrySetResult();
    }

    private void PublishRegistrations()
    {
        if (!_clusterAssigned)
            return;
        var list = new List<DeploymentRegistration>();
        foreach (var app in _apps.Values)
        {
            if (app.Deleting)
                continue;
            foreach (var d in app.Deployments.Values)
            {
                var replicas = new RegisteredReplica[d.Replicas.Count];
                for (var i = 0; i < replicas.Length; i++)
                    replicas[i] = new RegisteredReplica(d.Replicas[i].Replica.ReplicaId, d.Replicas[i].State, d.Replicas[i].Replica.Version);
                list.Add(new DeploymentRegistration(
                    app.Name, d.Name, d.Spec.Definition.ImplementationType.FullName ?? d.Spec.Definition.ImplementationType.Name,
                    d.Spec.CodeVersion, d.Spec.Options, d.Spec.UserConfigJson, d.AutoscaleTarget, d.Revision, d.ChangedAt,
                    d.AssignedReplicas, d.Health, d.Message, replicas));
            }
        }
        _registrations = list;
    }
}

/// <summary>
/// One deployment a cluster node deploys, as it reports it to the cluster controller: its code version, options
/// (a private copy: never mutated), the autoscaler's wish on this node, and the replicas it runs.
/// </summary>
internal sealed record DeploymentRegistration(
    string Application,
    string Deployment,
    string TypeName,
    string Version,
    DeploymentOptions Options,
    string ConfigJson,
    int? AutoscaleTarget,
    int Revision,
    DateTime ChangedAt,
    int Assigned,
    ServeHealth Health,
    string Message,
    RegisteredReplica[] Replicas);

/// <summary>A replica a cluster node runs.</summary>
internal sealed record RegisteredReplica(string ReplicaId, ReplicaState State, string Version);

/// <summary>
/// Set by a cluster layer (Serve.Orleans registers one in the host's services): the host then runs in cluster
/// assignment mode and its status shows the whole cluster.
/// </summary>
internal interface IClusterLayer
{
    /// <summary>This node's id (its Orleans silo address).</summary>
    string NodeId { get; }

    /// <summary>This node's status with the rest of the cluster added: other nodes' replicas, the nodes, placement problems.</summary>
    ServeStatus Describe(ServeStatus local);

    /// <summary>
    /// Records an admin write with the cluster controller, which appends it to its admin log, and returns what this node
    /// applies now, in order: the logged operations after <paramref name="applied"/> it has not applied yet, then the
    /// recorded one (last, with its revision). Throws <see cref="ClusterUnavailableException"/> when the controller
    /// cannot be reached in time; nothing is recorded then.
    /// </summary>
    Task<IReadOnlyList<AdminOperation>> RecordAdminAsync(AdminOperation operation, AdminApplied applied, CancellationToken cancellationToken);
}
