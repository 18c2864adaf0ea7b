namespace Serve.Control;

// What the loop reads from its inbox: requests from callers (completed through Done) and outcomes posted back by its own tasks.
internal sealed partial class ServeController
{
    private abstract record Message
    {
        public virtual void Fail(Exception error) { }
    }

    private abstract record Request(TaskCompletionSource Done) : Message
    {
        public override void Fail(Exception error) => Done.TrySetException(error);
    }

    private sealed record Deploy(ApplicationSpec Spec, TaskCompletionSource Done) : Request(Done);
    private sealed record Delete(string Application, TaskCompletionSource Done) : Request(Done);
    private sealed record Assign(IReadOnlyDictionary<(string App, string Deployment), int> Counts, TaskCompletionSource Done) : Request(Done);
    private sealed record Shutdown(TaskCompletionSource Done) : Request(Done);
    private sealed record DrainedForDelete(ApplicationState App) : Message;
    private sealed record Remove(ApplicationState App, DeploymentState Deployment) : Message;
    private sealed record ReplicaStarted(ApplicationState App, DeploymentState Deployment, ReplicaRecord Record) : Message;
    private sealed record ReplicaStartFailed(ApplicationState App, DeploymentState Deployment, ReplicaRecord Record, Exception Error) : Message;
    private sealed record ReplicaStopped(ApplicationState App, DeploymentState Deployment, ReplicaRecord Record) : Message;
    private sealed record Reconfigured(ApplicationState App, DeploymentState Deployment, ReplicaRecord Record, Exception? Error) : Message;
    private sealed record RetryStart(ApplicationState App, DeploymentState Deployment) : Message;
    private sealed record AutoscaleTick(ApplicationState App, DeploymentState Deployment) : Message;
    private sealed record ScaleFromZero(ApplicationState App, DeploymentState Deployment) : Message;
    private sealed record HealthChecked(ApplicationState App, DeploymentState Deployment, ReplicaRecord Record, Exception? Error) : Message;
}
