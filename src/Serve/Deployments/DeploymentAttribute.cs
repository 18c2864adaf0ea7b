namespace Serve;

/// <summary>
/// Marks a <c>partial</c> class (or a static method of a <c>static partial</c> class) as a Serve deployment.
/// The Serve source generator then emits a strongly typed handle (<c>XHandle</c>) and <c>Bind(...)</c> builders.
/// </summary>
/// <remarks>
/// The values set here are the deployment's defaults; <see cref="Application{THandle}.WithOptions"/> overrides
/// them for one bound deployment. Out-of-range constants are reported at compile time (SERVE0xx diagnostics).
/// </remarks>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class DeploymentAttribute : Attribute
{
    /// <summary>The deployment name; defaults to the class (or function) name.</summary>
    public string? Name { get; set; }

    /// <summary>How many replicas run; default 1. Zero is allowed (the deployment exists but serves nothing).</summary>
    public int NumReplicas { get; set; } = DeploymentOptions.DefaultNumReplicas;

    /// <summary>How many calls one replica runs at once; default 5.</summary>
    public int MaxOngoingRequests { get; set; } = DeploymentOptions.DefaultMaxOngoingRequests;

    /// <summary>How many calls may wait when every replica is full; -1 (default) means unbounded.</summary>
    public int MaxQueuedRequests { get; set; } = DeploymentOptions.Unbounded;

    /// <summary>The HTTP route prefix of an ingress deployment.</summary>
    public string? RoutePrefix { get; set; }

    /// <summary>The code version. Redeploying with another version rolls the replicas over.</summary>
    public string? Version { get; set; }

    /// <summary>CPUs reserved per replica (and the bound on its concurrently running calls); default 0: nothing reserved, no limit.</summary>
    public double NumCpus { get; set; } = DeploymentOptions.DefaultNumCpus;

    /// <summary>GPUs reserved per replica, fractional allowed; default 0.</summary>
    public double NumGpus { get; set; }

    /// <summary>Seconds a stopping replica waits for in-flight calls before it is disposed; default 20.</summary>
    public double GracefulShutdownTimeoutSeconds { get; set; } = DeploymentOptions.DefaultGracefulShutdownTimeoutSeconds;

    /// <summary>Seconds between health checks (<see cref="IHealthCheckable"/>); default 10.</summary>
    public double HealthCheckPeriodSeconds { get; set; } = DeploymentOptions.DefaultHealthCheckPeriodSeconds;

    /// <summary>Seconds one health check may take before it counts as failed; default 30.</summary>
    public double HealthCheckTimeoutSeconds { get; set; } = DeploymentOptions.DefaultHealthCheckTimeoutSeconds;

    /// <summary>
    /// Whether HTTP requests may carry JSON properties that match no parameter or member (they are ignored); default
    /// false (answered 400 naming the property). See <see cref="DeploymentOptions.AllowUnknownJsonProperties"/>.
    /// </summary>
    public bool AllowUnknownJsonProperties { get; set; }

    /// <summary>
    /// Whether a call in flight on a replica whose node failed is retried once on another replica; default true. Set it
    /// false for methods that must not run twice. See <see cref="DeploymentOptions.RetryOnNodeFailure"/>.
    /// </summary>
    public bool RetryOnNodeFailure { get; set; } = true;

    /// <summary>
    /// Multi-node Serve: at most this many replicas on one node; default 0, no cap. See <see cref="DeploymentOptions.MaxReplicasPerNode"/>.
    /// </summary>
    public int MaxReplicasPerNode { get; set; }

    /// <summary>
    /// Multi-node Serve: the labels a node must carry to run a replica, written <c>"zone=a,gpu=h100"</c>; default none
    /// (any node). A malformed selector is a compile error. See <see cref="DeploymentOptions.NodeSelector"/>.
    /// </summary>
    public string? NodeSelector { get; set; }
}

/// <summary>
/// Marks a deployment constructor parameter that the host resolves from its <see cref="IServiceProvider"/>
/// instead of taking it from <c>Bind(...)</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter, AllowMultiple = false, Inherited = false)]
public sealed class FromServicesAttribute : Attribute
{
}
