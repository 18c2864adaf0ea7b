using Serve.Scheduling;

namespace Serve.Control;

// Resources: the controller asks the pool (Scheduling/ResourcePool) before it starts a replica and gives the
// reservation back once the replica has stopped; deployments waiting for resources are retried on every release.
internal sealed partial class ServeController
{
    private const string NoGpuHint =
        "no GPU runtime found a device; on a GPU machine call AddCuda() (Serve.Cuda), or set ServeOptions.Resources.Gpus for logical GPUs";

    private static ResourcePool CreatePool(ServeOptions options, Microsoft.Extensions.Logging.ILogger logger)
    {
        var resources = options.Resources;
        IEnumerable<GpuDevice> gpus = resources.Gpus ?? [];
        if (resources.Gpus is null && resources.GpuRuntime is { } runtime)
        {
            try
            {
                gpus = runtime.DiscoverDevices();
            }
            catch (Exception e)
            {
                // Discovery must never take the host down: without devices, GPU deployments are reported unschedulable.
                Log.GpuDiscoveryFailed(logger, runtime.GetType().Name, e);
                gpus = [];
            }
        }
        return new ResourcePool(resources.Cpus, gpus, resources.Custom, NoGpuHint);
    }

    /// <summary>The error for an application that could not fit even on an empty host, or null.</summary>
    private UnschedulableException? NeverFits(ApplicationSpec spec)
    {
        // What RunAsync waits for: NumReplicas, or an autoscaled deployment's first target. Autoscaling beyond it
        // later is not refused here; replicas that do not fit then wait like any other.
        var replicas = spec.Deployments.Select(d => (d.Name, ResourceRequest.From(d.Options),
            d.Options.Autoscaling is { } autoscaling ? autoscaling.InitialReplicas ?? autoscaling.MinReplicas : d.Options.NumReplicas));
        if (_resources.WhyNeverFits(replicas) is not { } miss)
            return null;
        return new UnschedulableException(spec.Name, miss.Deployment, miss.Why,
            $"Application '{spec.Name}': deployment '{miss.Deployment}' can never be scheduled on this host, even with nothing else running. " +
            $"{miss.Why} (placing replica {miss.Replica} of {miss.Of}). " +
            "Lower its NumReplicas, NumCpus, NumGpus or Resources, or give the host more (ServeOptions.Resources).");
    }

    /// <summary>Reserves one replica's resources, or records why the deployment waits (shown in its status).</summary>
    private bool TryReserve(DeploymentState d, DeploymentSpec spec, out Reservation reservation)
    {
        if (_resources.TryReserve(ResourceRequest.From(spec.Options), out reservation, out var why))
        {
            d.LoggedUnschedulable = null;
            return true;
        }
        d.Unschedulable = why;
        if (d.LoggedUnschedulable != why)
        {
            // Once per new reason, not on every reconcile while it waits.
            d.LoggedUnschedulable = why;
            Log.ReplicaPendingResources(_logger, d.ApplicationName, d.Name, why);
        }
        return false;
    }

    private GpuAssignment? GpuAssignmentFor(DeploymentState d, string replicaId, Reservation reservation)
    {
        if (reservation.GpuIndexes.Length == 0)
            return null;
        var devices = reservation.GpuIndexes.Select(i => _resources.Gpus[i]).ToArray();
        return new GpuAssignment(d.ApplicationName, d.Name, replicaId, devices, (double)reservation.GpuUnitsPerDevice / ResourceRequest.Scale);
    }

    /// <summary>Makes the replica's GPU share: the runtime's (stream, allocator) or a logical one. Runs off the loop.</summary>
    private ReplicaGpu OpenGpu(GpuAssignment assignment) =>
        _options.Resources.GpuRuntime is { } runtime
            ? runtime.Open(assignment)
            : new ReplicaGpu(assignment);

    private static CpuLimiter? CreateCpuLimiter(DeploymentOptions options, out int threads)
    {
        threads = CpuLimiter.ThreadsFor(options.NumCpus);
        if (threads == 0)
        {
            threads = Environment.ProcessorCount;
            return null;
        }
        return new CpuLimiter(threads);
    }

    private void ReleaseResources(ReplicaRecord record)
    {
        if (record.Reservation is { } reservation)
            _resources.Release(reservation);
    }

    /// <summary>After resources were released: starts what waited for them, oldest application first.</summary>
    private void ReconcilePending()
    {
        foreach (var app in _apps.Values.ToList())
        {
            var any = false;
            foreach (var d in app.AllDeployments.ToList())
            {
                if (d.Unschedulable is null)
                    continue;
                any = true;
                Reconcile(d);
            }
            if (any)
                CheckApplication(app);
        }
    }

    /// <summary>
    /// A rolling update blocked by resources with no new replica on its way: stops one old replica whose
    /// resources would let a new one fit, so the update goes on without ever exceeding the pool.
    /// </summary>
    private void MakeRoomForRollingUpdate(DeploymentState d)
    {
        foreach (var r in d.Replicas)
        {
            if (r.State == ReplicaState.Stopping || (r.State == ReplicaState.Starting && r.Generation == d.Generation))
                return; // resources are on their way back, or a new replica is coming: wait for it
        }
        var request = ResourceRequest.From(d.Spec.Options);
        for (var i = d.Replicas.Count - 1; i >= 0; i--)
        {
            var r = d.Replicas[i];
            if (r.State == ReplicaState.Running && r.Generation != d.Generation && r.Reservation is { } held && _resources.FitsAfterReleasing(request, held))
            {
                StopReplica(d, r);
                return;
            }
        }
    }
}
