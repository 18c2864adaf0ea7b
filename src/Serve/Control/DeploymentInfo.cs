namespace Serve;

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
