using Orleans;

namespace Serve.Orleans;

/// <summary>
/// The cluster controller: one activation in the whole cluster (a single well-known key, non-reentrant), holding the
/// desired state and the placement. Nodes reach it with their heartbeat and get their assignment in the reply.
/// </summary>
[Alias("Serve.IClusterController")]
internal interface IClusterController : IGrainWithIntegerKey
{
    /// <summary>A node's periodic report; the reply says how many replicas of each deployment it runs and what the cluster looks like.</summary>
    [Alias("Heartbeat")]
    Task<HeartbeatReply> HeartbeatAsync(NodeReport report);

    /// <summary>The node the controller runs on now.</summary>
    [Alias("Node")]
    Task<string> GetNodeAsync();

    /// <summary>
    /// Records an admin write a node's admin API received (appended to the admin log, persisted) and returns what that
    /// node applies now: the logged operations after what it applied, the recorded one last.
    /// </summary>
    [Alias("RecordAdmin")]
    Task<AdminRecorded> RecordAdminAsync(AdminLogEntry operation, string logId, long applied);
}

/// <summary>What a node reports in each heartbeat: what it offers, its labels, what it deploys and runs, whether it drains.</summary>
[GenerateSerializer, Immutable, Alias("Serve.NodeReport")]
internal sealed record NodeReport(
    [property: Id(0)] string NodeId,
    [property: Id(1)] double Cpus,
    [property: Id(2)] GpuReport[] Gpus,
    [property: Id(3)] Dictionary<string, double> Custom,
    [property: Id(4)] Dictionary<string, string> Labels,
    [property: Id(5)] bool Draining,
    [property: Id(6)] DeploymentReport[] Deployments,
    [property: Id(7)] DesiredDeployment[] KnownDesired,
    [property: Id(8)] string AdminLogId,
    [property: Id(9)] long AdminApplied,
    [property: Id(10)] string AdminError);

[GenerateSerializer, Immutable, Alias("Serve.GpuReport")]
internal sealed record GpuReport(
    [property: Id(0)] int Ordinal,
    [property: Id(1)] string Name,
    [property: Id(2)] long MemoryBytes);

/// <summary>One deployment a node deploys: its code version and options as that node has them, and its replicas there.</summary>
[GenerateSerializer, Immutable, Alias("Serve.DeploymentReport")]
internal sealed record DeploymentReport(
    [property: Id(0)] string Application,
    [property: Id(1)] string Deployment,
    [property: Id(2)] string TypeName,
    [property: Id(3)] string Version,
    [property: Id(4)] int NumReplicas,
    [property: Id(5)] bool Autoscaled,
    [property: Id(6)] int? AutoscaleTarget,
    [property: Id(7)] double NumCpus,
    [property: Id(8)] double NumGpus,
    [property: Id(9)] Dictionary<string, double> Resources,
    [property: Id(10)] int? MaxReplicasPerNode,
    [property: Id(11)] Dictionary<string, string> NodeSelector,
    [property: Id(12)] string ConfigJson,
    [property: Id(13)] int Revision,
    [property: Id(14)] DateTime ChangedAt,
    [property: Id(15)] int Assigned,
    [property: Id(16)] ReplicaReport[] Replicas)
{
    public string Key => ClusterKeys.Of(Application, Deployment);
}

[GenerateSerializer, Immutable, Alias("Serve.ReplicaReport")]
internal sealed record ReplicaReport(
    [property: Id(0)] string ReplicaId,
    [property: Id(1)] string State,
    [property: Id(2)] string Version);

/// <summary>The controller's answer to a heartbeat.</summary>
/// <param name="Assignment">Replicas per deployment key this node runs (keys not named: none).</param>
/// <param name="View">The whole cluster, for this node's status.</param>
/// <param name="DrainComplete">For a draining node: every replica it runs has its replacement running elsewhere (or none can be placed).</param>
/// <param name="AdminLogId">The admin log the operations belong to.</param>
/// <param name="AdminOperations">The admin writes this node has not applied yet, in order.</param>
[GenerateSerializer, Immutable, Alias("Serve.HeartbeatReply")]
internal sealed record HeartbeatReply(
    [property: Id(0)] Dictionary<string, int> Assignment,
    [property: Id(1)] ClusterView View,
    [property: Id(2)] bool DrainComplete,
    [property: Id(3)] string AdminLogId,
    [property: Id(4)] AdminLogEntry[] AdminOperations);

/// <summary>The cluster as the controller knows it.</summary>
[GenerateSerializer, Immutable, Alias("Serve.ClusterView")]
internal sealed record ClusterView(
    [property: Id(0)] string ControllerNode,
    [property: Id(1)] NodeView[] Nodes,
    [property: Id(2)] DeploymentView[] Deployments,
    [property: Id(3)] DesiredDeployment[] Desired)
{
    public static readonly ClusterView Empty = new("", [], [], []);
}

[GenerateSerializer, Immutable, Alias("Serve.NodeView")]
internal sealed record NodeView(
    [property: Id(0)] string NodeId,
    [property: Id(1)] string State,
    [property: Id(2)] double Cpus,
    [property: Id(3)] string[] Gpus,
    [property: Id(4)] Dictionary<string, double> Custom,
    [property: Id(5)] Dictionary<string, string> Labels,
    [property: Id(6)] string Message);

/// <summary>One deployment cluster-wide: the version and replica count the cluster runs, why some do not run, and every replica with its node.</summary>
[GenerateSerializer, Immutable, Alias("Serve.DeploymentView")]
internal sealed record DeploymentView(
    [property: Id(0)] string Application,
    [property: Id(1)] string Deployment,
    [property: Id(2)] string Version,
    [property: Id(3)] int TargetReplicas,
    [property: Id(4)] string Message,
    [property: Id(5)] NodeReplicaView[] Replicas);

[GenerateSerializer, Immutable, Alias("Serve.NodeReplicaView")]
internal sealed record NodeReplicaView(
    [property: Id(0)] string NodeId,
    [property: Id(1)] string ReplicaId,
    [property: Id(2)] string State,
    [property: Id(3)] string Version);

/// <summary>The controller's persisted state: the desired state per deployment and the assignment per node.</summary>
[GenerateSerializer, Alias("Serve.ClusterState")]
internal sealed class ClusterState
{
    /// <summary>Per deployment key ("application/deployment").</summary>
    [Id(0)] public Dictionary<string, DesiredDeployment> Deployments { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Per node id: deployment key → replicas assigned there.</summary>
    [Id(1)] public Dictionary<string, Dictionary<string, int>> Assignment { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The admin writes every node applies (bounded: the last PUT and the deletes after it).</summary>
    [Id(2)] public AdminLog Admin { get; set; } = new();
}

/// <summary>
/// What the cluster runs of one deployment: adopted from the first node that reported it, and from every later
/// redeploy (a node's report with a newer change); the code version every node must run to get replicas.
/// </summary>
[GenerateSerializer, Immutable, Alias("Serve.DesiredDeployment")]
internal sealed record DesiredDeployment(
    [property: Id(0)] string Application,
    [property: Id(1)] string Deployment,
    [property: Id(2)] string TypeName,
    [property: Id(3)] string Version,
    [property: Id(4)] int NumReplicas,
    [property: Id(5)] bool Autoscaled,
    [property: Id(6)] double NumCpus,
    [property: Id(7)] double NumGpus,
    [property: Id(8)] Dictionary<string, double> Resources,
    [property: Id(9)] int? MaxReplicasPerNode,
    [property: Id(10)] Dictionary<string, string> NodeSelector,
    [property: Id(11)] string ConfigJson,
    [property: Id(12)] DateTime ChangedAt,
    [property: Id(13)] string SourceNode,
    [property: Id(14)] bool FirstDeploy)
{
    public static DesiredDeployment From(string nodeId, DeploymentReport r) => new(
        r.Application, r.Deployment, r.TypeName, r.Version, r.NumReplicas, r.Autoscaled, r.NumCpus, r.NumGpus, r.Resources,
        r.MaxReplicasPerNode, r.NodeSelector, r.ConfigJson, r.ChangedAt, nodeId, r.Revision == 0);

    /// <summary>
    /// Which of two desired states wins: a redeploy beats a node's first deploy (what a node started with never
    /// overrides what the cluster was told to run), then the newer change wins.
    /// </summary>
    public bool NewerThan(DesiredDeployment other) =>
        FirstDeploy != other.FirstDeploy ? !FirstDeploy : ChangedAt > other.ChangedAt;

    /// <summary>True when <paramref name="r"/> asks for the same as this (ignoring when and where).</summary>
    public bool Same(DeploymentReport r) =>
        TypeName == r.TypeName && Version == r.Version && NumReplicas == r.NumReplicas && Autoscaled == r.Autoscaled
        && NumCpus == r.NumCpus && NumGpus == r.NumGpus && MaxReplicasPerNode == r.MaxReplicasPerNode && ConfigJson == r.ConfigJson
        && SameMap(Resources, r.Resources) && SameMap(NodeSelector, r.NodeSelector);

    private static bool SameMap<T>(Dictionary<string, T> a, Dictionary<string, T> b) =>
        a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var v) && EqualityComparer<T>.Default.Equals(v, p.Value));
}

internal static class ClusterKeys
{
    public static string Of(string application, string deployment) => application + "/" + deployment;
}
