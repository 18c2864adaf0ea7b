namespace Serve;

/// <summary>
/// Deploys, inspects and removes applications on a Serve host (Ray Serve's <c>serve.*</c> API). Implemented by
/// <see cref="ServeHost"/> and registered in DI by <c>AddServe</c>.
/// </summary>
public interface IServeClient
{
    /// <summary>
    /// Deploys an application graph (or updates the application of the same name), waits until every replica runs
    /// the target version and config, and returns the handle of its ingress deployment (Ray's <c>serve.run</c>).
    /// </summary>
    /// <exception cref="DeploymentFailedException">A deployment could not start (e.g. its constructor kept throwing).</exception>
    /// <exception cref="ApplicationSupersededException">Another <c>RunAsync</c> of the same application with a different spec arrived before this version became healthy; that call reports the outcome.</exception>
    /// <exception cref="ArgumentException">The graph binds two different deployments under one name.</exception>
    Task<THandle> RunAsync<THandle>(Application<THandle> application, RunOptions? options = null, CancellationToken cancellationToken = default)
        where THandle : DeploymentHandle;

    /// <summary>Deletes an application: new calls fail, in-flight and queued calls finish, replicas are disposed.</summary>
    /// <exception cref="DeploymentNotFoundException">No application has that name.</exception>
    Task DeleteAsync(string applicationName, CancellationToken cancellationToken = default);

    /// <summary>Every deployment of every application (Ray's <c>serve.list_deployments</c>).</summary>
    IReadOnlyList<DeploymentInfo> ListDeployments();

    /// <summary>One deployment by name (Ray's <c>serve.get_deployment</c>).</summary>
    /// <param name="deploymentName">The deployment name.</param>
    /// <param name="applicationName">Its application; may be omitted when only one application has that deployment.</param>
    /// <exception cref="DeploymentNotFoundException">No such deployment, or the name is ambiguous without an application.</exception>
    DeploymentInfo GetDeployment(string deploymentName, string? applicationName = null);

    /// <summary>A typed handle to a running deployment.</summary>
    /// <exception cref="DeploymentNotFoundException">No such deployment, or the name is ambiguous without an application.</exception>
    /// <exception cref="InvalidCastException">The deployment's handle type is not <typeparamref name="THandle"/>.</exception>
    THandle GetHandle<THandle>(string deploymentName, string? applicationName = null) where THandle : DeploymentHandle;

    /// <summary>An untyped handle to a running deployment; call it with <see cref="DeploymentHandle.InvokeAsync(string, object?[], CancellationToken)"/>.</summary>
    /// <exception cref="DeploymentNotFoundException">No such deployment, or the name is ambiguous without an application.</exception>
    DeploymentHandle GetHandle(string deploymentName, string? applicationName = null);

    /// <summary>The status of every application and deployment.</summary>
    ServeStatus GetStatus();

    /// <summary>Stops everything: new calls fail, in-flight calls finish, replicas are disposed.</summary>
    Task ShutdownAsync(CancellationToken cancellationToken = default);
}
