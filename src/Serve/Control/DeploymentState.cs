using Serve.Replicas;
using Serve.Routing;

namespace Serve.Control;

/// <summary>One replica as the controller tracks it. Owned by the controller loop.</summary>
internal sealed class ReplicaRecord(Replica replica, int generation, bool fallback = false)
{
    public Replica Replica { get; } = replica;
    /// <summary>Which code generation of the deployment it runs; a rolling update bumps the deployment's generation.</summary>
    public int Generation { get; } = generation;
    /// <summary>
    /// Started from <see cref="DeploymentState.ServingSpec"/> to replace a replica of the serving version while the
    /// deployment is failed, not from the (failed) spec.
    /// </summary>
    public bool Fallback { get; } = fallback;
    public ReplicaState State { get; set; } = ReplicaState.Starting;
    public bool Reconfiguring { get; set; }
    /// <summary>Health checks failed in a row (reset by a passing one).</summary>
    public int HealthFailures { get; set; }
    /// <summary>The resources it holds in the host's pool, given back once it has stopped.</summary>
    public Scheduling.Reservation? Reservation { get; init; }
}

/// <summary>
/// The state of one deployment: its target spec and its replicas. Only the controller loop reads or writes it, so
/// it needs no locks.
/// </summary>
internal sealed class DeploymentState(string applicationName, DeploymentSpec spec, DeploymentEndpoint endpoint)
{
    public string ApplicationName { get; } = applicationName;
    public string Name => Spec.Name;
    public DeploymentSpec Spec { get; set; } = spec;
    public int Generation { get; set; }
    /// <summary>The highest generation number handed out, so a new code version never reuses one.</summary>
    public int LastGeneration { get; set; }

    /// <summary>
    /// The spec (and generation) the deployment last ran healthy with: what a failed rollout or reconfigure falls back
    /// to when a serving replica dies, and what a redeploy of that version returns to without restarting anything.
    /// Null until the deployment has been healthy once.
    /// </summary>
    public DeploymentSpec? ServingSpec { get; set; }
    public int ServingGeneration { get; set; }
    /// <summary>Replacements of the serving version that failed to start in a row while the deployment is failed.</summary>
    public int ConsecutiveFallbackFailures { get; set; }

    public DeploymentEndpoint Endpoint { get; } = endpoint;
    public List<ReplicaRecord> Replicas { get; } = [];
    public bool IsIngress { get; set; }

    /// <summary>True while the deployment is being removed: its target is zero replicas whatever the spec says.</summary>
    public bool Removing { get; set; }

    public int ConsecutiveStartFailures { get; set; }
    public bool RetryPending { get; set; }
    public Exception? FailureException { get; set; }
    public string? FailureMessage { get; set; }
    public bool Failed => FailureMessage is not null;

    /// <summary>Why a replica could not start for lack of resources (<c>Unschedulable: needs …</c>); null when nothing waits.</summary>
    public string? Unschedulable { get; set; }

    /// <summary>The last <see cref="Unschedulable"/> reason logged, so a waiting deployment logs each reason once.</summary>
    public string? LoggedUnschedulable { get; set; }

    /// <summary>The replica set last handed to the router, to avoid swapping it when nothing changed.</summary>
    public IReplica[] Published { get; set; } = [];

    public int TargetReplicas => Removing ? 0 : ClusterAssigned ? AssignedReplicas : AutoscaleTarget ?? Spec.Options.NumReplicas;

    /// <summary>
    /// True on a node of a cluster (<see cref="IClusterLayer"/>): the cluster controller decides how many replicas run
    /// here (<see cref="AssignedReplicas"/>), not <see cref="DeploymentOptions.NumReplicas"/> or the autoscaler.
    /// </summary>
    public bool ClusterAssigned { get; init; }

    /// <summary>The replicas the cluster controller assigned to this node; zero until an assignment arrives.</summary>
    public int AssignedReplicas { get; set; }

    /// <summary>0 for the spec this node first deployed; raised by each redeploy that changes it (the cluster adopts the newest change).</summary>
    public int Revision { get; set; }

    /// <summary>When <see cref="Revision"/> last changed (UTC).</summary>
    public DateTime ChangedAt { get; set; } = DateTime.UtcNow;

    /// <summary>The autoscaler's current replica count; <c>null</c> when the deployment does not autoscale.</summary>
    public int? AutoscaleTarget { get; set; }
    public Autoscaler? Autoscaler { get; set; }

    /// <summary>Replicas replaced after failing health checks, over the deployment's life, and the last reason.</summary>
    public int Restarts { get; set; }
    public int ConsecutiveRestarts { get; set; }
    public string? LastRestartReason { get; set; }

    public ServeHealth Health
    {
        get
        {
            if (Removing)
                return ServeHealth.Deleting;
            if (Failed)
                return ServeHealth.Unhealthy;
            var running = 0;
            foreach (var r in Replicas)
            {
                if (r.State != ReplicaState.Running || r.Generation != Generation || r.Reconfiguring || r.Replica.AppliedConfigJson != Spec.UserConfigJson)
                    return ServeHealth.Updating;
                running++;
            }
            return running == TargetReplicas ? ServeHealth.Healthy : ServeHealth.Updating;
        }
    }

    public string Message
    {
        get
        {
            if (FailureMessage is { } failure)
                return failure;
            if (RetryPending && ConsecutiveStartFailures > 0)
                return $"Replica failed to start {ConsecutiveStartFailures} time(s); retrying.";
            if (Unschedulable is { } why)
            {
                var running = Replicas.Count(r => r.State == ReplicaState.Running && r.Generation == Generation);
                return $"{why}. {running} of {TargetReplicas} replica(s) running; the rest start as soon as resources free up.";
            }
            if (LastRestartReason is { } restart)
                return $"{Restarts} replica(s) replaced after failing health checks; last: {restart}";
            return "";
        }
    }
}

/// <summary>One application: its deployments and the callers waiting for it. Owned by the controller loop.</summary>
internal sealed class ApplicationState(ApplicationSpec spec)
{
    public ApplicationSpec Spec { get; set; } = spec;
    public string Name => Spec.Name;
    public Dictionary<string, DeploymentState> Deployments { get; } = new(StringComparer.Ordinal);
    /// <summary>Deployments dropped from the spec, or replaced by another class, that still have replicas to stop.</summary>
    public List<DeploymentState> Retiring { get; } = [];
    public List<TaskCompletionSource> RunWaiters { get; } = [];
    public List<TaskCompletionSource> DeleteWaiters { get; } = [];
    public bool Deleting { get; set; }
    public bool DrainedForDelete { get; set; }

    public IEnumerable<DeploymentState> AllDeployments => Deployments.Values.Concat(Retiring);
}
