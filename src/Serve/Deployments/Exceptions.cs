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
