using Serve.Replicas;

namespace Serve.Control;

internal sealed partial class ServeController
{
    /// <summary>
    /// Moves one deployment one step towards its spec. Rolling updates surge: new-generation replicas start first
    /// (at most 20% of the target at a time, at least one), and an old replica is stopped only when a new one runs,
    /// so the number of serving replicas never drops below the target and no call fails.
    /// </summary>
    private void Reconcile(DeploymentState d)
    {
        var target = d.TargetReplicas;
        int currentStarting = 0, currentRunning = 0, oldRunning = 0;
        foreach (var r in d.Replicas)
        {
            if (r.State == ReplicaState.Stopping)
                continue;
            if (r.Generation == d.Generation)
            {
                if (r.State == ReplicaState.Starting) currentStarting++;
                else currentRunning++;
            }
            else if (r.State == ReplicaState.Running)
            {
                oldRunning++;
            }
        }
        var current = currentStarting + currentRunning;
        var canStart = !d.Failed && !d.RetryPending && !d.Removing;
        d.Unschedulable = null;

        if (oldRunning > 0 || d.Replicas.Any(r => r.Generation != d.Generation && r.State == ReplicaState.Starting))
        {
            var surge = Math.Max(1, target / 5);
            if (canStart)
            {
                for (var i = Math.Min(target - current, surge - currentStarting); i > 0; i--)
                {
                    if (!StartReplica(d))
                    {
                        MakeRoomForRollingUpdate(d);
                        break;
                    }
                }
            }
            // Stop old replicas only as new ones take over (or all of them when the target is zero).
            var excess = oldRunning + currentRunning - target;
            if (d.Failed && !d.Removing)
                excess = Math.Min(excess, 0);
            StopReplicas(d, Math.Min(excess, oldRunning), oldGenerationOnly: true);
        }
        else
        {
            if (canStart)
            {
                for (var i = target - current; i > 0 && StartReplica(d); i--)
                {
                }
            }
            if (currentRunning > target)
                StopReplicas(d, currentRunning - target, oldGenerationOnly: false);
        }

        if (!d.Removing && !d.Failed)
        {
            foreach (var r in d.Replicas)
            {
                if (r.State == ReplicaState.Running && r.Generation == d.Generation && !r.Reconfiguring && r.Replica.AppliedConfigJson != d.Spec.UserConfigJson)
                    StartReconfigure(d, r);
            }
        }
        if (d.Failed && !d.Removing && !d.RetryPending && d.ServingSpec is { } serving)
            KeepServingCapacity(d, serving, target);
        PublishReplicas(d);
        if (!d.Failed && !d.Removing && d.Health == ServeHealth.Healthy)
        {
            d.ServingSpec = d.Spec;
            d.ServingGeneration = d.Generation;
        }
        PublishFailure(d);
    }

    /// <summary>
    /// A failed deployment starts nothing of the spec that failed, but the version still serving keeps its replica
    /// count: a serving replica that dies (failed health checks) is replaced by one of the version it ran.
    /// </summary>
    private void KeepServingCapacity(DeploymentState d, DeploymentSpec serving, int target)
    {
        for (var i = target - Alive(d); i > 0 && StartReplica(d, serving, d.ServingGeneration, fallback: true); i--)
        {
        }
    }

    /// <summary>Replicas running or on their way.</summary>
    private static int Alive(DeploymentState d)
    {
        var alive = 0;
        foreach (var r in d.Replicas)
        {
            if (r.State is ReplicaState.Starting or ReplicaState.Running)
                alive++;
        }
        return alive;
    }

    /// <summary>
    /// A failed deployment with no replica running or on its way, and no serving version to fall back to, will never
    /// serve a call: the router fails its queued and new calls with the failure instead of letting them wait.
    /// </summary>
    private static void PublishFailure(DeploymentState d)
    {
        var stranded = d.Failed && !d.Removing && d.ServingSpec is null && Alive(d) == 0;
        d.Endpoint.Router.SetFailure(stranded ? d.FailureMessage : null, d.FailureException);
    }

    private void StopReplicas(DeploymentState d, int count, bool oldGenerationOnly)
    {
        // Newest first among the candidates: the oldest replicas have warm caches.
        for (var i = d.Replicas.Count - 1; i >= 0 && count > 0; i--)
        {
            var r = d.Replicas[i];
            if (r.State != ReplicaState.Running || (oldGenerationOnly && r.Generation == d.Generation))
                continue;
            StopReplica(d, r);
            count--;
        }
    }

    /// <summary>Starts one replica of the deployment's spec if the resource pool has room for it; false (and the deployment's reason set) if not.</summary>
    private bool StartReplica(DeploymentState d) => StartReplica(d, d.Spec, d.Generation, fallback: false);

    private bool StartReplica(DeploymentState d, DeploymentSpec spec, int generation, bool fallback)
    {
        if (!TryReserve(d, spec, out var reservation))
            return false;
        var app = _apps[d.ApplicationName];
        var id = $"{d.Name}#{++_replicaSerial:x4}";
        var replica = new Replica(d.ApplicationName, d.Name, id, spec.CodeVersion, spec.Definition, _pool, Isolation.IsolationPool.KeyOf(d.ApplicationName, spec))
        {
            Cpu = CreateCpuLimiter(spec.Options, out var threads),
        };
        replica.Context.CpuThreads = threads;
        var gpu = GpuAssignmentFor(d, id, reservation);
        var record = new ReplicaRecord(replica, generation, fallback) { Reservation = reservation };
        d.Replicas.Add(record);
        object?[] arguments;
        try
        {
            arguments = ResolveArguments(d.ApplicationName, spec);
        }
        catch (Exception e)
        {
            Post(new ReplicaStartFailed(app, d, record, e));
            return true;
        }
        _ = StartAsync();
        return true;

        async Task StartAsync()
        {
            try
            {
                if (gpu is not null)
                    replica.Context.Gpu = OpenGpu(gpu);
                await replica.StartAsync(spec.ConstructorIndex, arguments, _services, spec.Options.UserConfig, spec.UserConfigJson, CancellationToken.None).ConfigureAwait(false);
                Post(new ReplicaStarted(app, d, record));
            }
            catch (Exception e)
            {
                Post(new ReplicaStartFailed(app, d, record, e));
            }
        }
    }

    /// <summary>Turns <see cref="DeploymentRef"/> arguments into handles of the referenced deployments.</summary>
    private object?[] ResolveArguments(string application, DeploymentSpec spec)
    {
        var resolved = new object?[spec.Arguments.Length];
        for (var i = 0; i < resolved.Length; i++)
        {
            if (spec.Arguments[i] is DeploymentRef reference)
            {
                if (!_endpoints.TryGetValue((application, reference.Name), out var endpoint))
                    throw new DeploymentNotFoundException($"Deployment '{spec.Name}' of application '{application}' needs deployment '{reference.Name}', which is not part of the application.");
                resolved[i] = endpoint.Definition.CreateHandle(new CodeGeneration.HandleTarget(endpoint, endpoint.Definition));
            }
            else
            {
                resolved[i] = spec.Arguments[i];
            }
        }
        return resolved;
    }

    private void StopReplica(DeploymentState d, ReplicaRecord record)
    {
        var app = _apps[d.ApplicationName];
        record.State = ReplicaState.Stopping;
        PublishReplicas(d);
        var grace = d.Spec.Options.GracefulShutdownTimeout;
        _ = StopAsync();

        async Task StopAsync()
        {
            var left = await record.Replica.StopAsync(grace, _logger).ConfigureAwait(false);
            if (left > 0)
                Log.ReplicaStopTimedOut(_logger, record.Replica.ReplicaId, left);
            Post(new ReplicaStopped(app, d, record));
        }
    }

    private void StartReconfigure(DeploymentState d, ReplicaRecord record)
    {
        var app = _apps[d.ApplicationName];
        record.Reconfiguring = true;
        var spec = d.Spec;
        _ = ReconfigureAsync();

        async Task ReconfigureAsync()
        {
            try
            {
                await record.Replica.ReconfigureAsync(spec.Options.UserConfig, spec.UserConfigJson, record.Replica.Context.StoppingToken).ConfigureAwait(false);
                Post(new Reconfigured(app, d, record, null));
            }
            catch (Exception e)
            {
                Post(new Reconfigured(app, d, record, e));
            }
        }
    }

    /// <summary>Hands the router the replicas that take new calls: running ones, current generation first.</summary>
    private static void PublishReplicas(DeploymentState d)
    {
        var serving = new List<IReplica>(d.Replicas.Count);
        foreach (var r in d.Replicas)
        {
            if (r.State == ReplicaState.Running)
                serving.Add(r.Replica);
        }
        if (serving.Count == d.Published.Length && serving.SequenceEqual(d.Published))
            return;
        d.Published = [.. serving];
        d.Endpoint.Router.SetReplicas(d.Published);
    }

    /// <summary>Completes or fails the callers waiting on an application, and forgets a deleted one.</summary>
    private void CheckApplication(ApplicationState app)
    {
        app.Retiring.RemoveAll(d => d.Removing && d.Replicas.Count == 0);
        if (app.Deleting)
        {
            if (!app.DrainedForDelete || app.AllDeployments.Any(d => d.Replicas.Count > 0))
                return;
            _apps.Remove(app.Name);
            foreach (var d in app.Deployments.Values)
                _endpoints.TryRemove(new KeyValuePair<(string, string), Routing.DeploymentEndpoint>((app.Name, d.Name), d.Endpoint));
            // Shutdown waits on every application with one completion source: the last application finishes it.
            if (!_shuttingDown || _apps.Count == 0)
            {
                PublishStatus();
                foreach (var waiter in app.DeleteWaiters)
                    waiter.TrySetResult();
            }
            Log.ApplicationDeleted(_logger, app.Name);
            return;
        }
        if (app.RunWaiters.Count == 0)
            return;
        var failed = app.Deployments.Values.FirstOrDefault(d => d.Failed);
        if (failed is not null)
        {
            var error = new DeploymentFailedException(app.Name, failed.Name, failed.FailureMessage!, failed.FailureException);
            PublishStatus();
            foreach (var waiter in app.RunWaiters)
                waiter.TrySetException(error);
            app.RunWaiters.Clear();
            return;
        }
        if (app.Deployments.Values.All(d => d.Health == ServeHealth.Healthy) && app.Retiring.Count == 0)
        {
            PublishStatus(); // the caller reads the status as soon as RunAsync returns
            foreach (var waiter in app.RunWaiters)
                waiter.TrySetResult();
            app.RunWaiters.Clear();
            Log.ApplicationRunning(_logger, app.Name);
        }
    }

    /// <summary>
    /// Publishes what the loop knows as an immutable snapshot; queries read it without touching loop state. Replica
    /// load and queue length are read live at query time, since they change on every call.
    /// </summary>
    private void PublishStatus()
    {
        var apps = new List<ApplicationSnapshot>(_apps.Count);
        foreach (var app in _apps.Values.OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            var deployments = app.Deployments.Values.OrderBy(d => d.Name, StringComparer.Ordinal).Select(Describe).ToArray();
            var health = app.Deleting ? ServeHealth.Deleting
                : deployments.Any(d => d.Health == ServeHealth.Unhealthy) ? ServeHealth.Unhealthy
                : deployments.All(d => d.Health == ServeHealth.Healthy) && app.Retiring.Count == 0 ? ServeHealth.Healthy
                : ServeHealth.Updating;
            var message = string.Join(" ", deployments.Where(d => d.Message.Length > 0).Select(d => d.Message));
            apps.Add(new ApplicationSnapshot(app.Name, app.Spec.RoutePrefix, app.Spec.IngressName, health, message, deployments));
        }
        _snapshot = apps;
        var routes = new List<Http.IngressRoute>(_apps.Count);
        foreach (var app in _apps.Values)
        {
            if (app.Deployments.TryGetValue(app.Spec.IngressName, out var ingress))
                routes.Add(new Http.IngressRoute(app.Spec.RoutePrefix, app.Name, ingress.Endpoint, ingress.Endpoint.UntypedHandle, ingress.Spec.Options.AllowUnknownJsonProperties));
        }
        _routes = [.. routes.OrderBy(r => r.Application, StringComparer.Ordinal)];
        PublishRegistrations();

        DeploymentSnapshot Describe(DeploymentState d) => new(
            d.Name, d.ApplicationName, d.Spec.CodeVersion, d.IsIngress ? _apps[d.ApplicationName].Spec.RoutePrefix : null, d.IsIngress,
            d.Spec.Options.Clone(), d.Health, d.Message, d.TargetReplicas, d.Restarts,
            d.Replicas.Select(r => new ReplicaSnapshot(r.Replica, r.State, r.Replica.LoadContextName)).ToArray(), d.Endpoint.Router);
    }

    private static ServeStatus BuildStatus(IReadOnlyList<ApplicationSnapshot> apps) =>
        new(apps.Select(a => new ApplicationInfo(a.Name, a.RoutePrefix, a.Ingress, a.Health, a.Message,
            a.Deployments.Select(d => new DeploymentInfo(d.Name, d.Application, d.Version, d.RoutePrefix, d.IsIngress, d.Options.Clone(), d.Health, d.Message,
                d.Replicas.Select(r => new ReplicaInfo(r.Replica.ReplicaId, r.State, r.Replica.Version, r.Replica.Ongoing)
                {
                    LoadContext = r.LoadContext,
                    CpuThreads = r.Replica.Context.CpuThreads,
                    Gpu = r.Replica.Context.Gpu?.ToString(),
                }).ToArray(),
                d.Router.QueuedCount) { TargetReplicas = d.TargetReplicas, Restarts = d.Restarts }).ToArray())).ToArray());
}
