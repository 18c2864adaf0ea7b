using Serve.Replicas;

namespace Serve;

/// <summary>The health of an application or deployment (Ray Serve's status values).</summary>
public enum ServeHealth
{
    /// <summary>Moving towards its target: replicas are starting, stopping or being reconfigured.</summary>
    Updating,
    /// <summary>At its target: every replica runs the target version and config.</summary>
    Healthy,
    /// <summary>Could not reach its target; the message says why.</summary>
    Unhealthy,
    /// <summary>Being deleted: it takes no new calls and drains.</summary>
    Deleting,
}

/// <summary>One replica as <see cref="IServeClient.ListDeployments"/> reports it.</summary>
/// <param name="ReplicaId">The replica id.</param>
/// <param name="State">Its state.</param>
/// <param name="Version">The code version it runs.</param>
/// <param name="OngoingRequests">Calls it is running now.</param>
public sealed record ReplicaInfo(string ReplicaId, ReplicaState State, string Version, int OngoingRequests)
{
    /// <summary>
    /// The load context the replica runs in: <c>Default</c> for <see cref="RuntimeEnv.Shared"/>, otherwise the pooled
    /// isolated context's name, <c>{application}/{deployment}@{version}#{serial}</c> (also its
    /// <see cref="System.Runtime.Loader.AssemblyLoadContext.Name"/>). <c>Default</c> until an isolated replica has loaded.
    /// </summary>
    public string LoadContext { get; init; } = "Default";

    /// <summary>Threads that may run the replica's calls at once (its <see cref="DeploymentOptions.NumCpus"/> rounded up; see docs/resources.md).</summary>
    public int CpuThreads { get; init; }

    /// <summary>Its GPU share, e.g. <c>gpu0 × 0.5 (NVIDIA H100, budget 42949672960 bytes)</c>, or <c>null</c> for a CPU-only replica (or before it has started).</summary>
    public string? Gpu { get; init; }
}

/// <summary>One deployment as <see cref="IServeClient.ListDeployments"/> and <see cref="IServeClient.GetDeployment"/> report it.</summary>
/// <param name="Name">The deployment name.</param>
/// <param name="ApplicationName">Its application.</param>
/// <param name="Version">The target code version.</param>
/// <param name="RoutePrefix">The HTTP route prefix, for the application's ingress; otherwise <c>null</c>.</param>
/// <param name="IsIngress">True for the application's ingress (the deployment <c>RunAsync</c> returned a handle to).</param>
/// <param name="Options">A copy of the target options.</param>
/// <param name="Status">Its health.</param>
/// <param name="Message">Why it is not healthy, or empty.</param>
/// <param name="Replicas">Its replicas.</param>
/// <param name="QueuedRequests">Calls waiting for a replica slot.</param>
public sealed record DeploymentInfo(
    string Name,
    string ApplicationName,
    string Version,
    string? RoutePrefix,
    bool IsIngress,
    DeploymentOptions Options,
    ServeHealth Status,
    string Message,
    IReadOnlyList<ReplicaInfo> Replicas,
    int QueuedRequests)
{
    /// <summary>The replica count the controller aims at: <see cref="DeploymentOptions.NumReplicas"/>, or the autoscaler's current choice.</summary>
    public int TargetReplicas { get; init; }

    /// <summary>Replicas replaced after failing their health checks, over the deployment's life (the last reason is in <see cref="Message"/>).</summary>
    public int Restarts { get; init; }
}

/// <summary>One application as <see cref="IServeClient.GetStatus"/> reports it.</summary>
/// <param name="Name">The application name.</param>
/// <param name="RoutePrefix">Its HTTP route prefix.</param>
/// <param name="IngressDeployment">The deployment that receives its requests.</param>
/// <param name="Status">Its health: the worst of its deployments'.</param>
/// <param name="Message">Why it is not healthy, or empty.</param>
/// <param name="Deployments">Its deployments.</param>
public sealed record ApplicationInfo(
    string Name,
    string RoutePrefix,
    string IngressDeployment,
    ServeHealth Status,
    string Message,
    IReadOnlyList<DeploymentInfo> Deployments);

/// <summary>Everything the host runs (Ray's <c>serve status</c>).</summary>
/// <param name="Applications">The applications, ordered by name.</param>
public sealed record ServeStatus(IReadOnlyList<ApplicationInfo> Applications);

/// <summary>How <see cref="IServeClient.RunAsync{THandle}"/> deploys an application.</summary>
public sealed class RunOptions
{
    /// <summary>The default application name.</summary>
    public const string DefaultName = "default";

    /// <summary>The application name; deploying again under the same name updates it in place. Default <c>"default"</c>.</summary>
    public string Name { get; set; } = DefaultName;

    /// <summary>The HTTP route prefix of the ingress deployment; default its <see cref="DeploymentOptions.RoutePrefix"/>, else <c>"/"</c>.</summary>
    public string? RoutePrefix { get; set; }
}
