namespace Serve.Routing;

/// <summary>
/// The stable address of one deployment in one application: handles hold it, and it outlives rolling updates and
/// scale changes (only its router's replica set changes). Deleting the application closes it for good.
/// </summary>
internal sealed class DeploymentEndpoint
{
    public DeploymentEndpoint(string applicationName, string deploymentName, DeploymentDefinition definition, DeploymentOptions options, Observability.ServeMetrics? metrics = null)
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
        Definition = definition;
        Router = new DeploymentRouter(applicationName, deploymentName, options.MaxOngoingRequests, options.MaxQueuedRequests, metrics)
        {
            RetryOnNodeFailure = options.RetryOnNodeFailure,
        };
    }

    public string ApplicationName { get; }
    public string DeploymentName { get; }
    public DeploymentDefinition Definition { get; }
    public DeploymentRouter Router { get; }

    /// <summary>One untyped handle per endpoint, shared by the HTTP ingress instead of one per request.</summary>
    public DeploymentHandle UntypedHandle => _untyped ??= new DeploymentHandle(this);

    private DeploymentHandle? _untyped;

    public override string ToString() => $"{ApplicationName}/{DeploymentName}";
}
