using System.Diagnostics;
using Serve.Observability;
using Serve.Replicas;

namespace Serve.Routing;

/// <summary>
/// Picks a replica for each call of one deployment: power of two choices on ongoing requests, bounded by
/// <see cref="DeploymentOptions.MaxOngoingRequests"/>; when every replica is full the call waits in a FIFO queue
/// bounded by <see cref="DeploymentOptions.MaxQueuedRequests"/>. Replicas in this process come first (locality, as in
/// Ray Serve): a replica on another node is picked only when no local one has room. The controller swaps the replica
/// set and a node's failure drops its replicas (<see cref="DropNode"/>); the router never decides how many replicas exist.
/// </summary>
internal sealed class DeploymentRouter
{
    private static readonly IReplica[] s_none = [];

    private readonly string _applicationName;
    private readonly string _deploymentName;
    private readonly object _queueLock = new();
    private readonly LinkedList<Waiter> _waiters = new();
    // _replicas is every replica; _local and _remote split it by IsLocal (on one node _local is _replicas itself and
    // _remote is empty, so the local path reads one array as before). Writers swap all three under _setLock.
    private volatile IReplica[] _replicas = s_none;
    private volatile IReplica[] _local = s_none;
    private volatile IReplica[] _remote = s_none;
    private readonly object _setLock = new();
    // The two sources of replicas, merged into the arrays above: this host's controller, and the cluster layer
    // (replicas other nodes run). Both written under _setLock.
    private IReplica[] _fromController = s_none;
    private IReplica[] _fromCluster = s_none;
    private volatile int _maxOngoing;
    private volatile int _maxQueued;
    private int _waiterCount;
    private volatile string? _closedReason;
    private volatile Failure? _failure;
    private TaskCompletionSource? _queueEmpty;
    private readonly ServeMetrics? _metrics;
    private readonly TagList _metricTags;

    public DeploymentRouter(string applicationName, string deploymentName, int maxOngoing, int maxQueued, ServeMetrics? metrics = null)
    {
        _applicationName = applicationName;
        _deploymentName = deploymentName;
        _maxOngoing = maxOngoing;
        _maxQueued = maxQueued;
        _metrics = metrics;
        _metricTags = ServeMetrics.DeploymentTags(applicationName, deploymentName);
    }

    /// <summary>The application and deployment tags of the deployment's metrics.</summary>
    public ref readonly TagList MetricTags => ref _metricTags;

    public int QueuedCount => Volatile.Read(ref _waiterCount);

    /// <summary>The per-replica limit in force (<see cref="DeploymentOptions.MaxOngoingRequests"/>).</summary>
    public int MaxOngoing => _maxOngoing;

    /// <summary>Called (outside the lock) when a call queues while the deployment has no replica: the autoscaler's cue to scale from zero at once.</summary>
    public Action? QueuedWithoutReplicas { get; set; }
    public IReadOnlyList<IReplica> Replicas => _replicas;

    public void UpdateLimits(int maxOngoing, int maxQueued)
    {
        _maxOngoing = maxOngoing;
        _maxQueued = maxQueued;
        DrainQueue();
    }

    /// <summary>
    /// Whether a call lost with its replica's node is retried once on another replica
    /// (<see cref="DeploymentOptions.RetryOnNodeFailure"/>); read by the handle only on that exceptional path.
    /// </summary>
    public bool RetryOnNodeFailure { get; set; } = true;

    /// <summary>Replaces the replicas this host's controller runs. Waiting calls are handed to new capacity at once.</summary>
    public void SetReplicas(IReplica[] replicas)
    {
        lock (_setLock)
        {
            _fromController = replicas;
            Publish();
        }
        DrainQueue();
    }

    /// <summary>
    /// Replaces the replicas of this deployment that other nodes run (multi-node Serve: the cluster layer calls it when
    /// it learns their replica sets). They take calls only when no local replica has room.
    /// </summary>
    public void SetRemoteReplicas(IReplica[] replicas)
    {
        lock (_setLock)
        {
            _fromCluster = replicas;
            Publish();
        }
        DrainQueue();
    }

    /// <summary>
    /// Drops every replica on the node <paramref name="nodeId"/> at once (the node failed): no new call goes there, and
    /// queued calls are handed to the survivors. Calls in flight there fail with <see cref="ReplicaLostException"/> from
    /// their replica and are retried by their handle. Returns the number of replicas dropped.
    /// </summary>
    public int DropNode(string nodeId)
    {
        int dropped;
        lock (_setLock)
        {
            var before = _fromController.Length + _fromCluster.Length;
            _fromController = Without(_fromController, nodeId);
            _fromCluster = Without(_fromCluster, nodeId);
            dropped = before - _fromController.Length - _fromCluster.Length;
            if (dropped != 0)
                Publish();
        }
        if (dropped != 0)
            DrainQueue();
        return dropped;
    }

    private static IReplica[] Without(IReplica[] replicas, string nodeId)
    {
        var kept = new List<IReplica>(replicas.Length);
        foreach (var r in replicas)
        {
            if (r.NodeId != nodeId)
                kept.Add(r);
        }
        return kept.Count == replicas.Length ? replicas : [.. kept];
    }

    private void Publish()
    {
        var replicas = _fromCluster.Length == 0 ? _fromController : [.. _fromController, .. _fromCluster];
        var remote = 0;
        foreach (var r in replicas)
        {
            if (!r.IsLocal)
                remote++;
        }
        if (remote == 0)
        {
            _local = replicas;
            _remote = s_none;
        }
        else
        {
            var local = new IReplica[replicas.Length - remote];
            var others = new IReplica[remote];
            int l = 0, o = 0;
            foreach (var r in replicas)
            {
                if (r.IsLocal)
                    local[l++] = r;
                else
                    others[o++] = r;
            }
            _local = local;
            _remote = others;
        }
        _replicas = replicas;
    }

    /// <summary>Takes a slot without waiting; never used while calls are queued, so the queue stays FIFO.</summary>
    public bool TryAcquire(out IReplica replica)
    {
        if (Volatile.Read(ref _waiterCount) == 0 && _closedReason is null)
            return TryAcquireAny(out replica);
        replica = null!;
        return false;
    }

    /// <summary>
    /// Takes a slot for a call that names a model (multiplexing), without waiting: a replica that already holds the
    /// model first (the least busy of them), else the replica with the fewest models loaded, else any.
    /// </summary>
    public bool TryAcquireForModel(string modelId, out IReplica replica)
    {
        replica = null!;
        if (Volatile.Read(ref _waiterCount) != 0 || _closedReason is not null)
            return false;
        var replicas = _replicas;
        var max = _maxOngoing;
        IReplica? holder = null, emptiest = null;
        var fewest = int.MaxValue;
        foreach (var r in replicas)
        {
            if (r.Ongoing >= max || r.Models is not { } models)
                continue;
            if (models.Contains(modelId))
            {
                if (holder is null || r.Ongoing < holder.Ongoing)
                    holder = r;
            }
            else if (models.ModelIds.Count < fewest)
            {
                fewest = models.ModelIds.Count;
                emptiest = r;
            }
        }
        if (holder is not null && holder.TryAcquire(max))
        {
            replica = holder;
            return true;
        }
        if (emptiest is not null && emptiest.TryAcquire(max))
        {
            replica = emptiest;
            return true;
        }
        return TryAcquireAny(out replica);
    }

    /// <summary>Takes a slot for a call naming <paramref name="modelId"/>, waiting in the queue when every replica is full.</summary>
    public ValueTask<IReplica> AcquireForModelAsync(string modelId, CancellationToken cancellationToken)
    {
        if (_closedReason is { } reason)
            return ValueTask.FromException<IReplica>(new DeploymentUnavailableException(reason));
        if (TryAcquireForModel(modelId, out var replica))
            return new ValueTask<IReplica>(replica);
        return EnqueueAsync(cancellationToken);
    }

    /// <summary>Takes a slot, waiting in the queue when every replica is full.</summary>
    public ValueTask<IReplica> AcquireAsync(CancellationToken cancellationToken)
    {
        if (_closedReason is { } reason)
            return ValueTask.FromException<IReplica>(new DeploymentUnavailableException(reason));
        if (TryAcquire(out var replica))
            return new ValueTask<IReplica>(replica);
        return EnqueueAsync(cancellationToken);
    }

    public void Release(IReplica replica)
    {
        replica.Release();
        // Dekker pairing with EnqueueAsync: Release decremented (a full fence) before reading the count, and the
        // enqueuer incremented the count before trying the replicas again, so one of the two sees the other.
        if (Volatile.Read(ref _waiterCount) > 0)
            DrainQueue();
    }

    /// <summary>
    /// Called when a call starts on an acquired slot: the timestamp to pass to <see cref="Release(IReplica, long, bool)"/>
    /// when a metrics listener is on, else 0 (no clock read).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public long CallStarting() => _metrics is { CallsEnabled: true } ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Releases the slot of a call that started at <paramref name="started"/> (<see cref="CallStarting"/>), recording its metrics.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void Release(IReplica replica, long started, bool failed)
    {
        if (started != 0)
            _metrics!.RecordCall(in replica.MetricTags, started, failed);
        Release(replica);
    }

    /// <summary>Refuses new calls from now on; calls already queued are still served.</summary>
    public Task CloseAsync(string reason)
    {
        lock (_queueLock)
        {
            _closedReason = reason;
            if (_waiters.Count == 0)
                return Task.CompletedTask;
            _queueEmpty ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _queueEmpty.Task;
        }
    }

    /// <summary>
    /// Set by the controller while the deployment has failed and nothing will ever serve a call (no replica running or
    /// starting, no earlier version to fall back to); <c>null</c> once that is no longer so (a redeploy). While set,
    /// calls fail with <see cref="DeploymentFailedException"/> instead of queueing, and those already queued fail now.
    /// Only the queued path reads it: a call that finds a free replica never gets here, and a stranded deployment has none.
    /// </summary>
    public void SetFailure(string? message, Exception? cause)
    {
        if (message is null)
        {
            _failure = null;
            return;
        }
        if (_failure is { } current && current.Message == message && ReferenceEquals(current.Cause, cause))
            return;
        var failure = new Failure(message, cause);
        List<Waiter> failed;
        lock (_queueLock)
        {
            _failure = failure;
            failed = [.. _waiters];
            _waiters.Clear();
            Volatile.Write(ref _waiterCount, 0);
            _queueEmpty?.TrySetResult();
        }
        foreach (var w in failed)
            w.TrySetException(FailedException(failure));
    }

    /// <summary>The error of a call that replicas on other nodes refused <paramref name="refusals"/> times (each full there).</summary>
    public BackPressureException RefusedError(int refusals) => new(_applicationName, _deploymentName, refusals);

    private DeploymentFailedException FailedException(Failure failure) =>
        new(_applicationName, _deploymentName, failure.Message, failure.Cause);

    /// <summary>Fails every queued call, e.g. when the deployment is gone and nothing will serve them.</summary>
    public void FailQueued(Exception error)
    {
        List<Waiter> failed;
        lock (_queueLock)
        {
            failed = [.. _waiters];
            _waiters.Clear();
            Volatile.Write(ref _waiterCount, 0);
            _queueEmpty?.TrySetResult();
        }
        foreach (var w in failed)
            w.TrySetException(error);
    }

    // Local replicas first; a remote one only when none of them has room.
    private bool TryAcquireAny(out IReplica replica)
    {
        if (TryAcquireAmong(_local, out replica))
            return true;
        var remote = _remote;
        return remote.Length != 0 && TryAcquireAmong(remote, out replica);
    }

    private bool TryAcquireAmong(IReplica[] replicas, out IReplica replica)
    {
        var max = _maxOngoing;
        var n = replicas.Length;
        if (n == 1)
        {
            replica = replicas[0];
            return replica.TryAcquire(max);
        }
        if (n > 1)
        {
            var i = Random.Shared.Next(n);
            var j = Random.Shared.Next(n - 1);
            if (j >= i)
                j++;
            IReplica a = replicas[i], b = replicas[j];
            if (b.Ongoing < a.Ongoing)
                (a, b) = (b, a);
            if (a.TryAcquire(max))
            {
                replica = a;
                return true;
            }
            if (b.TryAcquire(max))
            {
                replica = b;
                return true;
            }
            // Both sampled replicas were full; look at the rest before queueing.
            for (var k = 0; k < n; k++)
            {
                var r = replicas[(i + k) % n];
                if (r.TryAcquire(max))
                {
                    replica = r;
                    return true;
                }
            }
        }
        replica = null!;
        return false;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<IReplica> EnqueueAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var waiter = new Waiter(this);
        lock (_queueLock)
        {
            if (_closedReason is { } reason)
                throw new DeploymentUnavailableException(reason);
            if (_failure is { } failure)
                throw FailedException(failure);
            var max = _maxQueued;
            if (max != DeploymentOptions.Unbounded && _waiters.Count >= max)
                throw new BackPressureException(_applicationName, _deploymentName, _replicas.Length, _maxOngoing, max);
            waiter.Node = _waiters.AddLast(waiter);
            Interlocked.Increment(ref _waiterCount);
        }
        DrainQueue();
        if (_replicas.Length == 0)
            QueuedWithoutReplicas?.Invoke();
        if (cancellationToken.CanBeCanceled)
            waiter.Registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), waiter);
        try
        {
            return await waiter.Task.ConfigureAwait(false);
        }
        finally
        {
            waiter.Registration.Dispose();
        }
    }

    /// <summary>Hands free slots to queued calls in FIFO order.</summary>
    private void DrainQueue()
    {
        if (Volatile.Read(ref _waiterCount) == 0)
            return;
        while (true)
        {
            Waiter? next;
            IReplica? replica;
            lock (_queueLock)
            {
                if (_waiters.First is not { } node)
                    return;
                if (!TryAcquireAny(out replica))
                    return;
                next = node.Value;
                RemoveLocked(next);
            }
            if (!next.TrySetResult(replica))
                Release(replica);
        }
    }

    private void RemoveLocked(Waiter waiter)
    {
        if (waiter.Node?.List is null)
            return;
        _waiters.Remove(waiter.Node);
        waiter.Node = null;
        Interlocked.Decrement(ref _waiterCount);
        if (_waiters.Count == 0 && _queueEmpty is { } empty)
            empty.TrySetResult();
    }

    private void CancelWaiter(Waiter waiter, CancellationToken token)
    {
        lock (_queueLock)
            RemoveLocked(waiter);
        waiter.TrySetCanceled(token);
    }

    private sealed record Failure(string Message, Exception? Cause);

    private sealed class Waiter(DeploymentRouter router) : TaskCompletionSource<IReplica>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public LinkedListNode<Waiter>? Node;
        public CancellationTokenRegistration Registration;

        public void Cancel(CancellationToken token) => router.CancelWaiter(this, token);
    }
}
