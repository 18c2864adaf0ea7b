namespace Serve;

/// <summary>The base class of the errors Serve itself raises.</summary>
public class ServeException : Exception
{
    /// <summary>Creates an exception with a message.</summary>
    public ServeException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and the exception that caused it.</summary>
    public ServeException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// A call was refused at once because every replica of the deployment was at <see cref="DeploymentOptions.MaxOngoingRequests"/>
/// and its queue held <see cref="DeploymentOptions.MaxQueuedRequests"/> waiting calls. Retry later, add replicas,
/// or raise the limits.
/// </summary>
public sealed class BackPressureException : ServeException
{
    /// <summary>Creates the exception for a deployment and its limits.</summary>
    public BackPressureException(string applicationName, string deploymentName, int replicas, int maxOngoingRequests, int maxQueuedRequests)
        : base($"Deployment '{deploymentName}' (application '{applicationName}') is overloaded: all {replicas} replica(s) have " +
               $"{maxOngoingRequests} ongoing request(s) (MaxOngoingRequests) and {maxQueuedRequests} request(s) are queued (MaxQueuedRequests). " +
               "Retry later, add replicas (NumReplicas) or raise MaxOngoingRequests/MaxQueuedRequests.")
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
        MaxOngoingRequests = maxOngoingRequests;
        MaxQueuedRequests = maxQueuedRequests;
    }

    // Every replica a call reached refused it (full on its node) more often than the handle retries.
    internal BackPressureException(string applicationName, string deploymentName, int refusals)
        : base($"Deployment '{deploymentName}' (application '{applicationName}') is overloaded: its replicas refused this call {refusals} times " +
               "(each was full with calls from other nodes). Retry later, add replicas (NumReplicas) or raise MaxOngoingRequests.")
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
    }

    /// <summary>The application.</summary>
    public string ApplicationName { get; }
    /// <summary>The overloaded deployment.</summary>
    public string DeploymentName { get; }
    /// <summary>The per-replica limit in force.</summary>
    public int MaxOngoingRequests { get; }
    /// <summary>The queue limit in force.</summary>
    public int MaxQueuedRequests { get; }
}

/// <summary>A deployment could not reach its target state, e.g. its constructor kept throwing.</summary>
public sealed class DeploymentFailedException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public DeploymentFailedException(string applicationName, string deploymentName, string message, Exception? innerException)
        : base(message, innerException)
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
    }

    /// <summary>The application.</summary>
    public string ApplicationName { get; }
    /// <summary>The deployment that failed.</summary>
    public string DeploymentName { get; }
}

/// <summary>
/// <see cref="IServeClient.RunAsync{THandle}"/> was overtaken: another <c>RunAsync</c> of the same application with a
/// different spec arrived before this one's version became healthy, so this version will never serve as a whole (the
/// controller now reconciles towards the later one, and that call reports its outcome). Nothing needs undoing; await
/// the later call, or run again if this version should win.
/// </summary>
public sealed class ApplicationSupersededException : ServeException
{
    /// <summary>Creates the exception for an application and the versions involved.</summary>
    public ApplicationSupersededException(string applicationName, string supersededVersion, string laterVersion)
        : base($"Application '{applicationName}' was redeployed by a later RunAsync ({laterVersion}) before this RunAsync's version " +
               $"({supersededVersion}) became healthy; the later deployment is being rolled out instead and its RunAsync reports the outcome. " +
               "Await that call, or run this version again if it should win.")
    {
        ApplicationName = applicationName;
        SupersededVersion = supersededVersion;
        LaterVersion = laterVersion;
    }

    /// <summary>The application.</summary>
    public string ApplicationName { get; }
    /// <summary>The deployments and versions this <c>RunAsync</c> asked for, as <c>Name Version</c> pairs.</summary>
    public string SupersededVersion { get; }
    /// <summary>The deployments and versions of the later <c>RunAsync</c>, as <c>Name Version</c> pairs.</summary>
    public string LaterVersion { get; }
}

/// <summary>No deployment of that name is running.</summary>
public sealed class DeploymentNotFoundException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public DeploymentNotFoundException(string message) : base(message) { }
}

/// <summary>The deployment was deleted, replaced or is shutting down, so it takes no new calls.</summary>
public sealed class DeploymentUnavailableException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public DeploymentUnavailableException(string message) : base(message) { }
}

/// <summary>
/// The replica running a call stopped before the call finished: the call ran past the deployment's
/// <see cref="DeploymentOptions.GracefulShutdownTimeout"/> while the replica was stopping (an update, a scale-down,
/// a failed health check or host shutdown), so its cancellation token was cancelled. The call may have had effects;
/// retrying it is safe only when the method is idempotent. Over HTTP this is a 503.
/// </summary>
public sealed class ReplicaStoppedException : ServeException
{
    /// <summary>Creates the exception for a replica that cancelled its calls after <paramref name="gracefulShutdownTimeout"/>.</summary>
    public ReplicaStoppedException(string applicationName, string deploymentName, string replicaId, TimeSpan gracefulShutdownTimeout, Exception? innerException = null)
        : base($"Replica '{replicaId}' of deployment '{deploymentName}' (application '{applicationName}') stopped while this call was running: " +
            $"the call did not finish within the deployment's GracefulShutdownTimeout ({gracefulShutdownTimeout.TotalSeconds:0.###} s), so its cancellation token was cancelled. " +
            "Retry the call if the method is idempotent (another replica serves it), make the method finish sooner, or raise GracefulShutdownTimeout.",
            innerException)
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
        ReplicaId = replicaId;
        GracefulShutdownTimeout = gracefulShutdownTimeout;
    }

    /// <summary>The application.</summary>
    public string ApplicationName { get; }
    /// <summary>The deployment whose replica stopped.</summary>
    public string DeploymentName { get; }
    /// <summary>The replica that stopped.</summary>
    public string ReplicaId { get; }
    /// <summary>The grace period the call was given once the replica began stopping.</summary>
    public TimeSpan GracefulShutdownTimeout { get; }
}

/// <summary>
/// The node running a replica failed or became unreachable while a call was in flight on it, so the call's outcome is
/// unknown (it may or may not have run). With <see cref="DeploymentOptions.RetryOnNodeFailure"/> (the default) the
/// handle retries such a call once on another replica within its deadline, so the caller sees this only when the
/// option is off or the retry was lost too. Over HTTP this is a 503.
/// </summary>
public sealed class ReplicaLostException : ServeException
{
    /// <summary>Creates the exception for a call lost with the node <paramref name="nodeId"/> that ran replica <paramref name="replicaId"/>.</summary>
    public ReplicaLostException(string applicationName, string deploymentName, string replicaId, string nodeId, Exception? innerException = null)
        : base($"Replica '{replicaId}' of deployment '{deploymentName}' (application '{applicationName}') was lost with this call in flight: " +
            $"its node '{nodeId}' failed or became unreachable, so the call may or may not have run. Retry the call if the method is idempotent; " +
            "DeploymentOptions.RetryOnNodeFailure (on by default) retries such calls once on another replica.",
            innerException)
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
        ReplicaId = replicaId;
        NodeId = nodeId;
    }

    /// <summary>The application.</summary>
    public string ApplicationName { get; }
    /// <summary>The deployment whose replica was lost.</summary>
    public string DeploymentName { get; }
    /// <summary>The replica that was lost.</summary>
    public string ReplicaId { get; }
    /// <summary>The node that failed.</summary>
    public string NodeId { get; }
}

/// <summary>
/// A remote replica turned a call away before running it because it was full on its node (calls from other nodes'
/// routers took its <see cref="DeploymentOptions.MaxOngoingRequests"/>). The handle never lets it reach the caller:
/// it gives the slot back and tries another replica or queues, a bounded number of times.
/// </summary>
internal sealed class ReplicaRefusedException(string replicaId) : ServeException($"Replica '{replicaId}' is full and refused the call.")
{
    public string ReplicaId { get; } = replicaId;
}

/// <summary>
/// An application was deployed under a route prefix another application of the host already serves over HTTP
/// (<c>/a</c> and <c>/a/</c> are the same prefix). Nothing changed: the other application keeps its prefix. Give
/// each application its own <see cref="RunOptions.RoutePrefix"/>, or delete the other application first.
/// </summary>
public sealed class RoutePrefixConflictException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public RoutePrefixConflictException(string applicationName, string routePrefix, string otherApplicationName, bool otherIsDeleting)
        : base($"Application '{applicationName}' cannot be served under route prefix \"{routePrefix}\": application '{otherApplicationName}' already is" +
               (otherIsDeleting ? " (it is being deleted; wait for its DeleteAsync to finish)" : "") +
               $". Give each application its own route prefix (RunOptions.RoutePrefix, or route_prefix in a config file), or delete '{otherApplicationName}' first.")
    {
        ApplicationName = applicationName;
        RoutePrefix = routePrefix;
        OtherApplicationName = otherApplicationName;
    }

    /// <summary>The application that was refused.</summary>
    public string ApplicationName { get; }
    /// <summary>The route prefix both asked for, normalised (no trailing <c>/</c>).</summary>
    public string RoutePrefix { get; }
    /// <summary>The application already served under that prefix.</summary>
    public string OtherApplicationName { get; }
}

/// <summary>
/// A call's input is invalid (wrong shape, type or value) and retrying it unchanged cannot succeed. Throw it (or a
/// subclass, e.g. Serve.Onnx's <c>OnnxInputException</c>) from a deployment method with a message that names the input,
/// what was expected and what was received: the HTTP ingress answers <c>400 Bad request: {Message}</c> instead of a 500,
/// and a handle caller gets the exception itself.
/// </summary>
public class InvalidInputException : ServeException
{
    /// <summary>Creates the exception with a message naming the input, what was expected and what was received.</summary>
    public InvalidInputException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the exception that revealed the problem.</summary>
    public InvalidInputException(string message, Exception? innerException) : base(message, innerException) { }
}
