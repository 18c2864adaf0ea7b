using Serve.Replicas;

namespace Serve.Control;

// The status as the loop last published it; the live load and queue numbers are read when it is asked for.
internal sealed partial class ServeController
{
    private sealed record ApplicationSnapshot(string Name, string RoutePrefix, string Ingress, ServeHealth Health, string Message, DeploymentSnapshot[] Deployments);

    private sealed record DeploymentSnapshot(
        string Name, string Application, string Version, string? RoutePrefix, bool IsIngress, DeploymentOptions Options,
        ServeHealth Health, string Message, int TargetReplicas, int Restarts, ReplicaSnapshot[] Replicas, Routing.DeploymentRouter Router);

    private sealed record ReplicaSnapshot(Replica Replica, ReplicaState State, string LoadContext);
}
