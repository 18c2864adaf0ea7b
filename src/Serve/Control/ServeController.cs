using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Serve.Replicas;
using Serve.Routing;

namespace Serve.Control;

/// <summary>
/// The one place that decides how many replicas of which version run. A single loop reads messages (deploy,
/// delete, replica started/failed/stopped, retry timer) and reconciles each deployment towards its spec; all
/// deployment state is touched only by that loop. Long work (constructors, draining) runs in tasks that post
/// their outcome back as messages.
/// </summary>
internal sealed partial class ServeController
{
    private readonly Channel<Message> _inbox = Channel.CreateUnbounded<Message>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, ApplicationState> _apps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string App, string Deployment), DeploymentEndpoint> _endpoints = new();
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;
    private readonly ServeOptions _options;
    private readonly Isolation.IsolationPool _pool;
    private readonly Task _loop;
    private readonly Scheduling.ResourcePool _resources;
    private volatile IReadOnlyList<ApplicationSnapshot> _snapshot = [];
    private volatile Http.IngressRoute[] _routes = [];
    private bool _shuttingDown;
    private int _replicaSerial;

    private readonly Observability.ServeMetrics? _metrics;

    public ServeController(ServeOptions options, IServiceProvider services, ILogger logger, Observability.ServeMetrics? metrics = null, bool clusterAssigned = false)
    {
        _clusterAssigned = clusterAssigned;
        _metrics = metrics;
        _options = options;
        _services = services;
        _logger = logger;
        _pool = new Isolation.IsolationPool(options.BoundarySerializer);
        _resources = CreatePool(options, logger);
        _loop = Task.Run(RunLoopAsync);
    }

    /// <summary>The status as of the loop's last message, with live load and queue numbers.</summary>
    public ServeStatus Status => BuildStatus(_snapshot);

    /// <summary>Each application's route prefix and ingress endpoint, published with the status; the HTTP ingress reads it per request.</summary>
    public IReadOnlyList<Http.IngressRoute> Routes => _routes;

    public bool TryGetEndpoint(string application, string deployment, out DeploymentEndpoint endpoint) =>
        _endpoints.TryGetValue((application, deployment), out endpoint!);

    public IEnumerable<DeploymentEndpoint> Endpoints => _endpoints.Values;

    public Task DeployAsync(ApplicationSpec spec, CancellationToken cancellationToken) =>
        Ask(done => new Deploy(spec, done), cancellationToken);

    public Task DeleteAsync(string application, CancellationToken cancellationToken) =>
        Ask(done => new Delete(application, done), cancellationToken);

    public async Task ShutdownAsync(CancellationToken cancellationToken)
    {
        await Ask(done => new Shutdown(done), cancellationToken).ConfigureAwait(false);
        _inbox.Writer.TryComplete();
        await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private Task Ask(Func<TaskCompletionSource, Message> create, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_inbox.Writer.TryWrite(create(done)))
            return Task.FromException(new ObjectDisposedException(nameof(ServeHost), "The Serve host has shut down; start a new one."));
        return done.Task.WaitAsync(cancellationToken);
    }

    private void Post(Message message) => _inbox.Writer.TryWrite(message);

    private async Task RunLoopAsync()
    {
        var reader = _inbox.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Drain what is queued, then publish the status once per batch rather than once per message.
            while (reader.TryRead(out var message))
            {
                try
                {
                    Handle(message);
                }
                catch (Exception e)
                {
                    // A bug here must not kill the loop and strand every caller; fail the asker and keep going.
                    Log.ControllerError(_logger, message.GetType().Name, e);
                    message.Fail(e);
                }
            }
            try
            {
                PublishStatus();
            }
            catch (Exception e)
            {
                Log.ControllerError(_logger, "publishing status", e);
            }
        }
    }

    private void Handle(Message message)
    {
        switch (message)
        {
            case Deploy m:
                OnDeploy(m.Spec, m.Done);
                break;
            case Delete m:
                OnDelete(m.Application, m.Done);
                break;
            case Shutdown m:
                OnShutdown(m.Done);
                break;
            case DrainedForDelete m:
                m.App.DrainedForDelete = true;
                foreach (var d in m.App.AllDeployments)
                {
                    d.Removing = true;
                    _pool.SetCurrent(m.App.Name, d.Name, null); // a deleted deployment keeps no warm context
                    Reconcile(d);
                }
                CheckApplication(m.App);
                break;
            case ReplicaStarted m:
                OnReplicaStarted(m.App, m.Deployment, m.Record);
                break;
            case ReplicaStartFailed m:
                OnReplicaStartFailed(m.App, m.Deployment, m.Record, m.Error);
                break;
            case ReplicaStopped m:
                m.Deployment.Replicas.Remove(m.Record);
                m.Record.State = ReplicaState.Stopped;
                ReleaseResources(m.Record);
                Log.ReplicaStopped(_logger, m.Record.Replica.ReplicaId, m.App.Name, m.Deployment.Name);
                Reconcile(m.Deployment);
                CheckApplication(m.App);
                ReconcilePending();
                PublishStatus(); // the status must not keep a stopped replica (or its load context) reachable
                break;
            case Reconfigured m:
                OnReconfigured(m.App, m.Deployment, m.Record, m.Error);
                break;
            case Remove m:
                m.Deployment.Removing = true;
                m.Deployment.Autoscaler?.Dispose();
                m.Deployment.Autoscaler = null;
                if (!m.App.Deployments.TryGetValue(m.Deployment.Name, out var successor) || ReferenceEquals(successor, m.Deployment))
                    _pool.SetCurrent(m.App.Name, m.Deployment.Name, null);
                Reconcile(m.Deployment);
                CheckApplication(m.App);
                break;
            case AutoscaleTick m:
                OnAutoscaleTick(m.App, m.Deployment);
                break;
            case ScaleFromZero m:
                OnScaleFromZero(m.App, m.Deployment);
                break;
            case HealthChecked m:
                OnHealthChecked(m.App, m.Deployment, m.Record, m.Error);
                break;
            case Assign m:
                OnAssign(m.Counts, m.Done);
                break;
            case RetryStart m:
                m.Deployment.RetryPending = false;
                Reconcile(m.Deployment);
                CheckApplication(m.App);
                break;
        }
    }

    /// <summary>
    /// A replica holds at most <see cref="DeploymentOptions.MaxOngoingRequests"/> calls, so a <c>[Batch]</c> method whose
    /// MaxBatchSize is larger never gets a full batch: every batch waits its whole BatchWaitTimeout. Ray Serve warns
    /// of the same; this is the commonest batching mistake (the defaults are 5 and 10).
    /// </summary>
    private void WarnOfBatchesThatNeverFill(ApplicationSpec spec)
    {
        foreach (var d in spec.Deployments)
        {
            var ongoing = d.Options.MaxOngoingRequests;
            foreach (var m in d.Definition.Methods)
            {
                if (m.MaxBatchSize is { } size && size > ongoing)
                    Log.BatchNeverFills(_logger, d.Name, spec.Name, m.Name, size, ongoing);
            }
        }
    }

    private void OnDeploy(ApplicationSpec spec, TaskCompletionSource done)
    {
        if (_shuttingDown)
        {
            done.TrySetException(new ObjectDisposedException(nameof(ServeHost), "The Serve host is shutting down; deploy to a new host."));
            return;
        }
        if (_apps.TryGetValue(spec.Name, out var app) && app.Deleting)
        {
            done.TrySetException(new InvalidOperationException($"Application '{spec.Name}' is being deleted; wait for DeleteAsync to finish, then deploy it again."));
            return;
        }
        if (RouteConflict(spec) is { } conflict)
        {
            done.TrySetException(conflict);
            return;
        }
        // On a cluster node the cluster controller places replicas over every node's resources and reports what fits nowhere.
        if (!_clusterAssigned && NeverFits(spec) is { } unschedulable)
        {
            // Refused before anything changes: a running version of the application keeps serving.
            done.TrySetException(unschedulable);
            return;
        }
        Log.DeployingApplication(_logger, spec.Name, spec.Deployments.Count);
        WarnOfBatchesThatNeverFill(spec);
        var firstDeploy = app is null;
        if (app is null)
        {
            app = new ApplicationState(spec);
            _apps.Add(spec.Name, app);
        }
        else if (app.RunWaiters.Count > 0 && !SameApplication(app.Spec, spec))
        {
            // Their version will never serve as a whole: reporting success when the later one is healthy would be a lie.
            var superseded = new ApplicationSupersededException(app.Name, Versions(app.Spec, spec), Versions(spec, app.Spec));
            foreach (var waiter in app.RunWaiters)
                waiter.TrySetException(superseded);
            app.RunWaiters.Clear();
        }
        app.Spec = spec;

        foreach (var ds in spec.Deployments)
        {
            if (app.Deployments.TryGetValue(ds.Name, out var existing) && !ReferenceEquals(existing.Spec.Definition, ds.Definition))
            {
                // Another class under the same name: its handles cannot call the new code, so retire it whole.
                Retire(app, existing, $"Deployment '{ds.Name}' of application '{app.Name}' was replaced by {ds.Definition.ImplementationType}; get a new handle.");
                existing = null;
            }
            if (existing is null)
            {
                var endpoint = new DeploymentEndpoint(app.Name, ds.Name, ds.Definition, ds.Options, _metrics);
                existing = new DeploymentState(app.Name, ds, endpoint)
                {
                    ClusterAssigned = _clusterAssigned,
                    AssignedReplicas = AssignedTo(app.Name, ds.Name),
                    Revision = firstDeploy ? 0 : 1,
                };
                app.Deployments.Add(ds.Name, existing);
                _endpoints[(app.Name, ds.Name)] = endpoint;
            }
            else
            {
                if (!existing.Spec.SameAs(ds))
                {
                    existing.Revision++;
                    existing.ChangedAt = DateTime.UtcNow;
                }
                if (!existing.Spec.SameCode(ds))
                {
                    // Back to the version that last ran healthy (e.g. after a failed rollout): its replicas are current again and keep running.
                    existing.Generation = existing.ServingSpec is { } serving && serving.SameCode(ds)
                        ? existing.ServingGeneration
                        : ++existing.LastGeneration;
                }
                existing.Spec = ds;
                // A redeploy is a fresh chance for a failed deployment.
                existing.FailureMessage = null;
                existing.FailureException = null;
                existing.ConsecutiveStartFailures = 0;
                existing.ConsecutiveFallbackFailures = 0;
                existing.Endpoint.Router.UpdateLimits(ds.Options.MaxOngoingRequests, ds.Options.MaxQueuedRequests);
                existing.Endpoint.Router.RetryOnNodeFailure = ds.Options.RetryOnNodeFailure;
            }
            existing.IsIngress = ds.Name == spec.IngressName;
            _pool.SetCurrent(app.Name, ds.Name, Isolation.IsolationPool.KeyOf(app.Name, ds));
            ConfigureAutoscaling(app, existing);
        }
        foreach (var stale in app.Deployments.Values.Where(d => spec.Deployments.All(s => s.Name != d.Name)).ToList())
            Retire(app, stale, $"Deployment '{stale.Name}' was removed from application '{app.Name}' by a redeploy.");

        app.RunWaiters.Add(done);
        foreach (var d in app.AllDeployments.ToList())
            Reconcile(d);
        CheckApplication(app);
    }

    /// <summary>
    /// Two applications under one prefix would shadow each other silently (the router picks one), so the second is
    /// refused. Without HTTP ingress no request is routed by prefix, and applications may share the default "/".
    /// </summary>
    private RoutePrefixConflictException? RouteConflict(ApplicationSpec spec)
    {
        if (!_options.Http.Enabled)
            return null;
        foreach (var other in _apps.Values)
        {
            if (other.Name != spec.Name && string.Equals(other.Spec.RoutePrefix, spec.RoutePrefix, StringComparison.Ordinal))
                return new RoutePrefixConflictException(spec.Name, spec.RoutePrefix, other.Name, other.Deleting);
        }
        return null;
    }

    private static bool SameApplication(ApplicationSpec a, ApplicationSpec b)
    {
        if (a.RoutePrefix != b.RoutePrefix || a.IngressName != b.IngressName || a.Deployments.Count != b.Deployments.Count)
            return false;
        foreach (var d in a.Deployments)
        {
            if (!b.Deployments.Any(o => o.Name == d.Name && o.SameAs(d)))
                return false;
        }
        return true;
    }

    /// <summary>Names each deployment of <paramref name="spec"/> with its code version, and says so when only options or arguments differ from <paramref name="other"/>'s.</summary>
    private static string Versions(ApplicationSpec spec, ApplicationSpec other)
    {
        var versions = string.Join(", ", spec.Deployments.Select(d => $"{d.Name} {d.CodeVersion}"));
        return versions == string.Join(", ", other.Deployments.Select(d => $"{d.Name} {d.CodeVersion}"))
            ? $"{versions}; options, arguments or config differ"
            : versions;
    }

    private void Retire(ApplicationState app, DeploymentState deployment, string reason)
    {
        app.Deployments.Remove(deployment.Name);
        _endpoints.TryRemove(new KeyValuePair<(string, string), DeploymentEndpoint>((app.Name, deployment.Name), deployment.Endpoint));
        app.Retiring.Add(deployment);
        _ = DrainThenRemoveAsync(app, deployment, reason);
    }

    private void OnDelete(string application, TaskCompletionSource done)
    {
        if (!_apps.TryGetValue(application, out var app))
        {
            done.TrySetException(new DeploymentNotFoundException(
                $"No application named '{application}' is running. Running applications: {(_apps.Count == 0 ? "none" : string.Join(", ", _apps.Keys.Order()))}."));
            return;
        }
        app.DeleteWaiters.Add(done);
        StartDelete(app);
    }

    private void StartDelete(ApplicationState app)
    {
        if (app.Deleting)
            return;
        app.Deleting = true;
        var error = new DeploymentUnavailableException($"Application '{app.Name}' was deleted before it finished deploying.");
        foreach (var waiter in app.RunWaiters)
            waiter.TrySetException(error);
        app.RunWaiters.Clear();
        var reason = _shuttingDown
            ? $"The Serve host is shutting down; application '{app.Name}' takes no new calls."
            : $"Application '{app.Name}' was deleted; deploy it again and get a new handle.";
        var drains = app.AllDeployments.Select(d => DrainQueueAsync(d, reason)).ToArray();
        _ = Task.WhenAll(drains).ContinueWith(_ => Post(new DrainedForDelete(app)), TaskScheduler.Default);
    }

    /// <summary>Closes a deployment's router and waits (bounded) for its queued calls to be served.</summary>
    private static async Task DrainQueueAsync(DeploymentState deployment, string reason)
    {
        var router = deployment.Endpoint.Router;
        var queueEmpty = router.CloseAsync(reason);
        if (!queueEmpty.IsCompleted)
        {
            if (router.Replicas.Count == 0)
                router.FailQueued(new DeploymentUnavailableException(reason));
            else
                await Task.WhenAny(queueEmpty, Task.Delay(deployment.Spec.Options.GracefulShutdownTimeout)).ConfigureAwait(false);
            router.FailQueued(new DeploymentUnavailableException(reason));
        }
    }

    private async Task DrainThenRemoveAsync(ApplicationState app, DeploymentState deployment, string reason)
    {
        await DrainQueueAsync(deployment, reason).ConfigureAwait(false);
        Post(new Remove(app, deployment));
    }

    private void OnShutdown(TaskCompletionSource done)
    {
        _shuttingDown = true;
        if (_apps.Count == 0)
        {
            done.TrySetResult();
            return;
        }
        foreach (var app in _apps.Values.ToList())
        {
            app.DeleteWaiters.Add(done);
            StartDelete(app);
            CheckApplication(app);
        }
    }

    private void OnReplicaStarted(ApplicationState app, DeploymentState deployment, ReplicaRecord record)
    {
        record.State = ReplicaState.Running;
        deployment.ConsecutiveStartFailures = 0;
        deployment.ConsecutiveFallbackFailures = 0;
        StartHealthChecks(app, deployment, record);
        Log.ReplicaStarted(_logger, record.Replica.ReplicaId, app.Name, deployment.Name, record.Replica.Version);
        _metrics?.RecordReplicaStarted(record.Replica);
        Reconcile(deployment);
        CheckApplication(app);
    }

    private void OnReplicaStartFailed(ApplicationState app, DeploymentState deployment, ReplicaRecord record, Exception error)
    {
        deployment.Replicas.Remove(record);
        record.State = ReplicaState.Stopped;
        ReleaseResources(record);
        _ = record.Replica.StopAsync(TimeSpan.Zero, _logger);
        if (record.Fallback && deployment.Failed && !deployment.Removing)
        {
            OnFallbackStartFailed(app, deployment, record, error);
            return;
        }
        if (deployment.Removing || record.Generation != deployment.Generation)
        {
            Reconcile(deployment);
            CheckApplication(app);
            ReconcilePending();
            return;
        }
        var attempt = ++deployment.ConsecutiveStartFailures;
        Log.ReplicaStartFailed(_logger, record.Replica.ReplicaId, app.Name, deployment.Name, attempt, error);
        // Code that cannot be loaded or called across its isolation boundary fails the same way every time.
        if (attempt >= _options.MaxReplicaStartAttempts || error is IsolationException)
        {
            var cause = error is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : error;
            deployment.FailureException = cause;
            deployment.FailureMessage = cause is IsolationException
                ? $"Deployment '{deployment.Name}' of application '{app.Name}' failed to start: {cause.Message}"
                : $"Deployment '{deployment.Name}' of application '{app.Name}' failed to start: its replica threw {cause.GetType().Name} " +
                  $"{attempt} time(s) in a row, last: {cause.Message}";
            Log.DeploymentFailed(_logger, app.Name, deployment.Name, deployment.FailureMessage);
        }
        else
        {
            deployment.RetryPending = true;
            var delay = RetryDelay(attempt - 1);
            _ = Task.Delay(delay).ContinueWith(_ => Post(new RetryStart(app, deployment)), TaskScheduler.Default);
        }
        Reconcile(deployment);
        CheckApplication(app);
        ReconcilePending();
    }

    /// <summary>
    /// A replacement of the serving version failed to start: retried with backoff like any start, until
    /// <see cref="ServeOptions.MaxReplicaStartAttempts"/> in a row (or code that cannot load) leave nothing to fall back
    /// to; then, once no replica is left, calls fail at once with the deployment's failure.
    /// </summary>
    private void OnFallbackStartFailed(ApplicationState app, DeploymentState deployment, ReplicaRecord record, Exception error)
    {
        var attempt = ++deployment.ConsecutiveFallbackFailures;
        Log.ReplicaStartFailed(_logger, record.Replica.ReplicaId, app.Name, deployment.Name, attempt, error);
        if (attempt >= _options.MaxReplicaStartAttempts || error is IsolationException)
        {
            var cause = error is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : error;
            deployment.ServingSpec = null;
            deployment.FailureMessage += $" Replacing its serving version's replicas failed too ({attempt} time(s) in a row, last: {cause.GetType().Name}: {cause.Message}).";
            Log.DeploymentFailed(_logger, app.Name, deployment.Name, deployment.FailureMessage);
        }
        else
        {
            deployment.RetryPending = true;
            _ = Task.Delay(RetryDelay(attempt - 1)).ContinueWith(_ => Post(new RetryStart(app, deployment)), TaskScheduler.Default);
        }
        Reconcile(deployment);
        CheckApplication(app);
        ReconcilePending();
    }

    private void OnReconfigured(ApplicationState app, DeploymentState deployment, ReplicaRecord record, Exception? error)
    {
        record.Reconfiguring = false;
        if (error is not null && record.State == ReplicaState.Running)
        {
            Log.ReconfigureFailed(_logger, record.Replica.ReplicaId, error);
            deployment.FailureException = error;
            deployment.FailureMessage = $"Deployment '{deployment.Name}' of application '{app.Name}': ReconfigureAsync threw {error.GetType().Name}: {error.Message}";
        }
        Reconcile(deployment);
        CheckApplication(app);
    }
}
