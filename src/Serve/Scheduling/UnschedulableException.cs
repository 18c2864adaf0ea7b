namespace Serve;

/// <summary>
/// <c>RunAsync</c> refused an application that can never fit the host's resource pool
/// (<see cref="ServeOptions.Resources"/>), even with nothing else running. The message names the deployment and the
/// resource, e.g. <c>Unschedulable: needs 0.5 GPU, but the host has no GPU</c>. Lower the deployment's
/// <see cref="DeploymentOptions.NumReplicas"/>, <see cref="DeploymentOptions.NumCpus"/>,
/// <see cref="DeploymentOptions.NumGpus"/> or <see cref="DeploymentOptions.Resources"/>, or give the host more.
/// </summary>
public sealed class UnschedulableException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public UnschedulableException(string applicationName, string deploymentName, string reason, string message)
        : base(message)
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
        Reason = reason;
    }

    /// <summary>The application that was refused.</summary>
    public string ApplicationName { get; }

    /// <summary>The deployment that does not fit.</summary>
    public string DeploymentName { get; }

    /// <summary>The scheduler's reason, <c>Unschedulable: needs …</c>.</summary>
    public string Reason { get; }
}
