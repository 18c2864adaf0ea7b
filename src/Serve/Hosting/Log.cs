using Microsoft.Extensions.Logging;

namespace Serve;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Deploying application '{Application}' ({Count} deployment(s)).")]
    public static partial void DeployingApplication(ILogger logger, string application, int count);

    [LoggerMessage(2, LogLevel.Information, "Application '{Application}' is running.")]
    public static partial void ApplicationRunning(ILogger logger, string application);

    [LoggerMessage(3, LogLevel.Information, "Replica {ReplicaId} of '{Application}/{Deployment}' (version {Version}) started.")]
    public static partial void ReplicaStarted(ILogger logger, string replicaId, string application, string deployment, string version);

    [LoggerMessage(4, LogLevel.Warning, "Replica {ReplicaId} of '{Application}/{Deployment}' failed to start (attempt {Attempt}).")]
    public static partial void ReplicaStartFailed(ILogger logger, string replicaId, string application, string deployment, int attempt, Exception exception);

    [LoggerMessage(5, LogLevel.Information, "Replica {ReplicaId} of '{Application}/{Deployment}' stopped.")]
    public static partial void ReplicaStopped(ILogger logger, string replicaId, string application, string deployment);

    [LoggerMessage(6, LogLevel.Warning, "Replica {ReplicaId} had {Count} call(s) still running after its graceful shutdown timeout; their cancellation tokens were cancelled.")]
    public static partial void ReplicaStopTimedOut(ILogger logger, string replicaId, int count);

    [LoggerMessage(7, LogLevel.Error, "Disposing replica {ReplicaId} threw.")]
    public static partial void ReplicaDisposeFailed(ILogger logger, string replicaId, Exception exception);

    [LoggerMessage(8, LogLevel.Error, "Deployment '{Application}/{Deployment}' failed: {Message}")]
    public static partial void DeploymentFailed(ILogger logger, string application, string deployment, string message);

    [LoggerMessage(9, LogLevel.Warning, "Reconfiguring replica {ReplicaId} failed; it will be replaced.")]
    public static partial void ReconfigureFailed(ILogger logger, string replicaId, Exception exception);

    [LoggerMessage(10, LogLevel.Information, "Application '{Application}' deleted.")]
    public static partial void ApplicationDeleted(ILogger logger, string application);

    [LoggerMessage(11, LogLevel.Error, "The Serve controller loop failed on {Message}.")]
    public static partial void ControllerError(ILogger logger, string message, Exception exception);

    [LoggerMessage(30, LogLevel.Information, "Autoscaling deployment '{Deployment}' of application '{Application}' from {From} to {To} replica(s) (average load {Load:0.##}).")]
    public static partial void Autoscaled(ILogger logger, string application, string deployment, int from, int to, double load);

    [LoggerMessage(33, LogLevel.Warning, "Deployment '{Deployment}' of application '{Application}': [Batch] method {Method} has MaxBatchSize = {MaxBatchSize}, but a replica takes at most MaxOngoingRequests = {MaxOngoingRequests} calls, so its batches never fill and each waits its whole BatchWaitTimeout. Set MaxOngoingRequests to at least {MaxBatchSize}.")]
    public static partial void BatchNeverFills(ILogger logger, string deployment, string application, string method, int maxBatchSize, int maxOngoingRequests);

    [LoggerMessage(31, LogLevel.Warning, "Health check {Failures}/3 of replica {ReplicaId} failed.")]
    public static partial void HealthCheckFailed(ILogger logger, string replicaId, int failures, Exception error);

    [LoggerMessage(32, LogLevel.Warning, "Replacing replica {ReplicaId} of deployment '{Deployment}': {Reason}")]
    public static partial void ReplicaReplaced(ILogger logger, string replicaId, string deployment, string reason);

    [LoggerMessage(12, LogLevel.Error, "GPU discovery by {Runtime} failed; the host runs with no GPU.")]
    public static partial void GpuDiscoveryFailed(ILogger logger, string runtime, Exception exception);

    [LoggerMessage(13, LogLevel.Warning, "Deployment '{Application}/{Deployment}' waits for resources: {Reason}. Its replicas start as soon as " +
        "resources free up; to start them now, lower its NumCpus, NumGpus or Resources, delete another application, or give the host more (ServeOptions.Resources).")]
    public static partial void ReplicaPendingResources(ILogger logger, string application, string deployment, string reason);

    [LoggerMessage(34, LogLevel.Information, "Cluster: deployment '{Application}/{Deployment}' runs {To} replica(s) on this node (was {From}), as the cluster controller assigned")]
    public static partial void ReplicasAssigned(ILogger logger, string application, string deployment, int from, int to);
}
