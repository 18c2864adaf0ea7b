using System.Diagnostics;
using System.Runtime.CompilerServices;
using Serve.CodeGeneration;
using Serve.Observability;
using Serve.Replicas;

namespace Serve;

// One call through a handle: take a slot on a replica from the router (admission), let the replica run it (it decides
// between a direct call and a boundary crossing and applies its CPU limit), release the slot with the outcome. One
// helper per result shape: a value (typed or boxed, Call), void (CallVoid), a stream (StreamAsync); each has an inline
// fast path that allocates nothing when a replica is free, and a queued path for the rest (a full deployment, a model
// id, a timeout, a caller that must not run the method on its own thread, or a listener for Serve's spans: the queued
// path is an async method, so the call's span is current inside it and never leaks to the caller). A replica on another
// node always takes the queued path, which alone knows how to try again when that replica refuses the call (full
// there) or is lost with its node: the inline fast path only checks that the replica it got is a local one.
public partial class DeploymentHandle
{
    /// <summary>Takes a replica slot: for a model id, preferring replicas that hold the model (multiplexing).</summary>
    private ValueTask<IReplica> AcquireAsync(CancellationToken cancellationToken) =>
        _modelId is null ? _router.AcquireAsync(cancellationToken) : _router.AcquireForModelAsync(_modelId, cancellationToken);

    // ---- Values (typed and boxed) -----------------------------------------------------------------------------

    /// <summary>How a value call runs on the replica that admitted it: typed (argument struct) or boxed (method id).</summary>
    private interface IValueCall<TResult>
    {
        int MethodId { get; }

        /// <summary>Called once a replica took the call.</summary>
        void Acquired(IReplica replica);

        ValueTask<TResult> Invoke(IReplica replica, DeploymentDefinition caller, bool offCaller, CancellationToken cancellationToken);
    }

    private readonly struct TypedCall<TArgs, TResult>(TArgs arguments) : IValueCall<TResult>
        where TArgs : struct, IInvocation<TResult>
    {
        public int MethodId => arguments.MethodId;

        public void Acquired(IReplica replica)
        {
        }

        // A local replica is called directly (a sealed type: no generic virtual dispatch on the hot path); any other
        // replica through the interface.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ValueTask<TResult> Invoke(IReplica replica, DeploymentDefinition caller, bool offCaller, CancellationToken cancellationToken) =>
            replica is Replica local
                ? local.InvokeAsync<TArgs, TResult>(caller, arguments, offCaller, cancellationToken)
                : replica.InvokeAsync<TArgs, TResult>(caller, arguments, offCaller, cancellationToken);
    }

    private readonly struct BoxedCall(int methodId, object?[] arguments, CallReceipt? receipt) : IValueCall<object?>
    {
        public int MethodId => methodId;

        public void Acquired(IReplica replica)
        {
            if (receipt is not null)
                receipt.ReplicaId = replica.ReplicaId;
        }

        public ValueTask<object?> Invoke(IReplica replica, DeploymentDefinition caller, bool offCaller, CancellationToken cancellationToken) =>
            replica.InvokeBoxedAsync(caller, methodId, arguments, offCaller, cancellationToken);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask<TResult> Call<TCall, TResult>(TCall call, CancellationToken cancellationToken, bool offCaller)
        where TCall : struct, IValueCall<TResult>
    {
        if (_timeout is not null || _modelId is not null || offCaller || ServeTracing.Enabled)
            return CallWithDeadline<TCall, TResult>(call, cancellationToken, offCaller);
        if (!_router.TryAcquire(out var replica))
            return CallQueuedAsync<TCall, TResult>(call, cancellationToken, offCaller: false);
        if (replica is not Replica)
            return CallQueuedAsync<TCall, TResult>(call, cancellationToken, offCaller: false, replica);
        call.Acquired(replica);
        var slot = Begin(replica, cancellationToken);
        ValueTask<TResult> pending;
        try
        {
            pending = call.Invoke(replica, _definition, offCaller: false, slot.Token);
        }
        catch (Exception e)
        {
            End(slot, failed: true);
            return ValueTask.FromException<TResult>(StoppedOr(e, replica, cancellationToken));
        }
        if (pending.IsCompletedSuccessfully)
        {
            var result = pending.Result;
            End(slot, failed: false);
            return new ValueTask<TResult>(result);
        }
        return AwaitAndReleaseAsync(pending, slot, cancellationToken);
    }

    // A deadline call reuses the queued path under a token that also carries the timeout, and runs the method off the
    // caller's thread, so the caller can be released at the deadline even if the method blocks.
    private ValueTask<TResult> CallWithDeadline<TCall, TResult>(TCall call, CancellationToken cancellationToken, bool offCaller)
        where TCall : struct, IValueCall<TResult>
    {
        if (_timeout is null)
            return CallQueuedAsync<TCall, TResult>(call, cancellationToken, offCaller);
        var deadline = new CallDeadline(this, call.MethodId, _timeout, cancellationToken);
        return deadline.WaitAsync(CallQueuedAsync<TCall, TResult>(call, deadline.Token, offCaller: true));
    }

    // acquired: a replica on another node the fast path already took a slot on.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TResult> CallQueuedAsync<TCall, TResult>(TCall call, CancellationToken cancellationToken, bool offCaller, IReplica? acquired = null)
        where TCall : struct, IValueCall<TResult>
    {
        using var activity = ServeTracing.StartCall(this, call.MethodId);
        try
        {
            var replica = acquired ?? await AcquireAsync(cancellationToken).ConfigureAwait(false);
            var retries = default(Retries);
            while (true)
            {
                ServeTracing.Acquired(activity, replica);
                EnterModel();
                call.Acquired(replica);
                var slot = Begin(replica, cancellationToken);
                var outcome = Outcome.Failed;
                try
                {
                    var result = await call.Invoke(replica, _definition, offCaller, slot.Token).ConfigureAwait(false);
                    outcome = Outcome.Succeeded;
                    return result;
                }
                catch (ServeException e) when (ShouldRetry(e, ref retries, cancellationToken))
                {
                    outcome = e is ReplicaRefusedException ? Outcome.Refused : Outcome.Failed;
                }
            catch (OperationCanceledException e) when (IsStopped(replica, cancellationToken))
            {
                throw replica.StoppedError(e);
            }
            finally
            {
                    End(slot, outcome);
                }
                replica = await ReacquireAsync(retries, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (activity is not null)
        {
            ServeTracing.Failed(activity, e);
            throw;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TResult> AwaitAndReleaseAsync<TResult>(ValueTask<TResult> pending, Slot slot, CancellationToken caller)
    {
        var failed = true;
        try
        {
            var result = await pending.ConfigureAwait(false);
            failed = false;
            return result;
        }
        catch (OperationCanceledException e) when (IsStopped(slot.Replica, caller))
        {
            throw slot.Replica.StoppedError(e);
        }
        finally
        {
            End(slot, failed);
        }
    }

    // ---- Void -------------------------------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ValueTask StartVoid<TArgs>(IReplica replica, DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation =>
        replica is Replica local
            ? local.InvokeVoidAsync(caller, arguments, offCaller, cancellationToken)
            : replica.InvokeVoidAsync(caller, arguments, offCaller, cancellationToken);

    private ValueTask CallVoid<TArgs>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (_timeout is not null || _modelId is not null || ServeTracing.Enabled)
            return CallVoidWithDeadline(arguments, cancellationToken);
        if (!_router.TryAcquire(out var replica))
            return CallVoidQueuedAsync(arguments, cancellationToken, offCaller: false);
        if (replica is not Replica)
            return CallVoidQueuedAsync(arguments, cancellationToken, offCaller: false, replica);
        var slot = Begin(replica, cancellationToken);
        ValueTask pending;
        try
        {
            pending = StartVoid(replica, _definition, arguments, offCaller: false, slot.Token);
        }
        catch (Exception e)
        {
            End(slot, failed: true);
            return ValueTask.FromException(StoppedOr(e, replica, cancellationToken));
        }
        if (pending.IsCompletedSuccessfully)
        {
            pending.GetAwaiter().GetResult();
            End(slot, failed: false);
            return default;
        }
        return AwaitAndReleaseAsync(pending, slot, cancellationToken);
    }

    private ValueTask CallVoidWithDeadline<TArgs>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (_timeout is null)
            return CallVoidQueuedAsync(arguments, cancellationToken, offCaller: false);
        var deadline = new CallDeadline(this, arguments.MethodId, _timeout, cancellationToken);
        return deadline.WaitAsync(CallVoidQueuedAsync(arguments, deadline.Token, offCaller: true));
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CallVoidQueuedAsync<TArgs>(TArgs arguments, CancellationToken cancellationToken, bool offCaller, IReplica? acquired = null)
        where TArgs : struct, IVoidInvocation
    {
        using var activity = ServeTracing.StartCall(this, arguments.MethodId);
        try
        {
            var replica = acquired ?? await AcquireAsync(cancellationToken).ConfigureAwait(false);
            var retries = default(Retries);
            while (true)
            {
                ServeTracing.Acquired(activity, replica);
                EnterModel();
                var slot = Begin(replica, cancellationToken);
                var outcome = Outcome.Failed;
                try
                {
                    await StartVoid(replica, _definition, arguments, offCaller, slot.Token).ConfigureAwait(false);
                    outcome = Outcome.Succeeded;
                    return;
                }
                catch (ServeException e) when (ShouldRetry(e, ref retries, cancellationToken))
                {
                    outcome = e is ReplicaRefusedException ? Outcome.Refused : Outcome.Failed;
            }
            catch (OperationCanceledException e) when (IsStopped(replica, cancellationToken))
            {
                throw replica.StoppedError(e);
            }
            finally
            {
                    End(slot, outcome);
                }
                replica = await ReacquireAsync(retries, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (activity is not null)
        {
            ServeTracing.Failed(activity, e);
            throw;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitAndReleaseAsync(ValueTask pending, Slot slot, CancellationToken caller)
    {
        var failed = true;
        try
        {
            await pending.ConfigureAwait(false);
            failed = false;
        }
        catch (OperationCanceledException e) when (IsStopped(slot.Replica, caller))
        {
            throw slot.Replica.StoppedError(e);
        }
        finally
        {
            End(slot, failed);
        }
    }

    // ---- Streams ----------------------------------------------------------------------------------------------

    /// <summary>How a stream call starts on the replica that admitted it: typed (argument struct) or boxed (method id).</summary>
    private interface IReplicaStream<TItem>
    {
        int MethodId { get; }

        void Acquired(IReplica replica);

        ValueTask<IAsyncEnumerable<TItem>> StartAsync(IReplica replica, DeploymentDefinition caller, CancellationToken cancellationToken);
    }

    private readonly struct TypedStream<TArgs, TItem>(TArgs arguments) : IReplicaStream<TItem>
        where TArgs : struct, IStreamInvocation<TItem>
    {
        public int MethodId => arguments.MethodId;

        public void Acquired(IReplica replica)
        {
        }

        public ValueTask<IAsyncEnumerable<TItem>> StartAsync(IReplica replica, DeploymentDefinition caller, CancellationToken cancellationToken) =>
            replica.InvokeStreamAsync<TArgs, TItem>(caller, arguments, cancellationToken);
    }

    private readonly struct BoxedStream(int methodId, object?[] arguments, CallReceipt? receipt) : IReplicaStream<object?>
    {
        public int MethodId => methodId;

        public void Acquired(IReplica replica)
        {
            if (receipt is not null)
                receipt.ReplicaId = replica.ReplicaId;
        }

        public ValueTask<IAsyncEnumerable<object?>> StartAsync(IReplica replica, DeploymentDefinition caller, CancellationToken cancellationToken) =>
            replica.InvokeBoxedStreamAsync(caller, methodId, arguments, cancellationToken);
    }

    /// <summary>
    /// Streams one call's items from a replica, holding its slot until the stream ends. The producer's token carries
    /// the caller's token and the handle's timeout, and is cancelled when the consumer stops early (typed and untyped
    /// streams alike), so the replica stops producing for nobody. A stream that a remote replica refused or lost while
    /// starting is started again elsewhere, like a call; once it has yielded an item it is never retried.
    /// </summary>
    private async IAsyncEnumerable<TItem> StreamAsync<TStream, TItem>(TStream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TStream : struct, IReplicaStream<TItem>
    {
        using var producer = new CallDeadline(this, stream.MethodId, _timeout, cancellationToken);
        // The stream's span; made current again before each move, since the consumer resumes this iterator from its own context.
        using var activity = ServeTracing.StartCall(this, stream.MethodId);
        IReplica replica;
        try
        {
            replica = await AcquireAsync(producer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (producer.TimedOut)
        {
            var timeout = producer.TimeoutError();
            ServeTracing.Failed(activity, timeout);
            throw timeout;
        }
        catch (Exception e) when (activity is not null)
        {
            ServeTracing.Failed(activity, e);
            throw;
        }
        var retries = default(Retries);
        // With a timeout, the producer never runs on the consumer's thread and each item is raced against the
        // deadline, so a producer that blocks or ignores its token cannot hold its consumer past it. A move the consumer
        // stopped waiting for (abandoned) is awaited in the background before the enumerator is disposed and the slot freed.
        var raced = _timeout is not null;
        Task? abandoned = null;
        Task<IAsyncEnumerator<TItem>>? abandonedEnumerator = null;
        Slot slot;
        IAsyncEnumerator<TItem> enumerator;
        while (true)
        {
            ServeTracing.Acquired(activity, replica);
            stream.Acquired(replica);
            slot = Begin(replica, producer.Token);
            var token = slot.Token;
            var outcome = Outcome.Failed;
            try
            {
                EnterModel();
                if (raced)
                {
                    var starting = StartStreamElsewhere<TStream, TItem>(stream, replica, _definition, token);
                    try
                    {
                        await producer.WaitForEitherAsync(starting).ConfigureAwait(false);
                    }
                    catch
                    {
                        (abandoned, abandonedEnumerator) = (starting, starting);
                        throw;
                    }
                    enumerator = await starting.ConfigureAwait(false);
                }
                else
                {
                    var items = await stream.StartAsync(replica, _definition, token).ConfigureAwait(false);
                    enumerator = items.GetAsyncEnumerator(token);
                }
                break;
            }
            catch (ServeException e) when (ShouldRetry(e, ref retries, producer.Token))
            {
                outcome = e is ReplicaRefusedException ? Outcome.Refused : Outcome.Failed;
            }
            catch (OperationCanceledException) when (producer.TimedOut)
            {
                Finish(abandoned, abandonedEnumerator, slot);
                throw producer.TimeoutError();
            }
            catch (OperationCanceledException e) when (IsStopped(replica, producer.Token))
            {
                Finish(abandoned, abandonedEnumerator, slot);
                throw replica.StoppedError(e);
            }
            catch (Exception e)
            {
                ServeTracing.Failed(activity, e);
                Finish(abandoned, abandonedEnumerator, slot);
                throw;
            }
            End(slot, outcome);
            try
            {
                replica = await ReacquireAsync(retries, producer.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (producer.TimedOut)
            {
                throw producer.TimeoutError();
            }
        }
        var failed = true;
        try
        {
            var ended = false;
            try
            {
                while (true)
                {
                    // Only an exception from the producer counts as a failed call; a consumer stopping early does not.
                    failed = true;
                    if (activity is not null)
                        Activity.Current = activity;
                    bool more;
                    try
                    {
                        if (raced)
                        {
                            var next = MoveNextElsewhere(enumerator);
                            try
                            {
                                await producer.WaitForEitherAsync(next).ConfigureAwait(false);
                            }
                            catch
                            {
                                (abandoned, abandonedEnumerator) = (next, Task.FromResult(enumerator));
                                throw;
                            }
                            more = await next.ConfigureAwait(false);
                        }
                        else
                        {
                            more = await enumerator.MoveNextAsync().ConfigureAwait(false);
                        }
                    }
                    catch (OperationCanceledException) when (producer.TimedOut)
                    {
                        throw producer.TimeoutError();
                    }
                    catch (OperationCanceledException e) when (IsStopped(replica, producer.Token))
                    {
                        throw replica.StoppedError(e);
                    }
                    failed = false;
                    if (!more)
                    {
                        ended = true;
                        break;
                    }
                    yield return enumerator.Current;
                }
            }
            finally
            {
                if (!ended)
                    producer.Cancel();
                if (abandoned is null)
                    await enumerator.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (failed && activity is not null)
                activity.SetStatus(ActivityStatusCode.Error);
            if (abandoned is null)
                End(slot, failed);
            else
                _ = FinishAbandonedAsync(abandoned, abandonedEnumerator!, slot);
        }
    }

    // A stream whose start failed for good: its slot is freed now, or once the start its consumer stopped waiting for returns.
    private void Finish<TItem>(Task? abandoned, Task<IAsyncEnumerator<TItem>>? abandonedEnumerator, in Slot slot)
    {
        if (abandoned is null)
            End(slot, failed: true);
        else
            _ = FinishAbandonedAsync(abandoned, abandonedEnumerator!, slot);
    }

    // A timed-out stream's start and moves run on the thread pool, so the consumer can stop waiting at the deadline.
    // Separate methods: lambdas in StreamAsync would allocate their closure for every stream, raced or not.
    private static Task<IAsyncEnumerator<TItem>> StartStreamElsewhere<TStream, TItem>(TStream stream, IReplica replica, DeploymentDefinition caller, CancellationToken token)
        where TStream : struct, IReplicaStream<TItem> =>
        Task.Run(async () =>
        {
            var items = await stream.StartAsync(replica, caller, token).ConfigureAwait(false);
            return items.GetAsyncEnumerator(token);
        });

    private static Task<bool> MoveNextElsewhere<TItem>(IAsyncEnumerator<TItem> enumerator) =>
        Task.Run(() => enumerator.MoveNextAsync().AsTask());

    /// <summary>
    /// Disposes a timed-out stream's enumerator and frees its replica slot once the start or move its consumer stopped
    /// waiting for has returned: the replica is busy until then, and an enumerator must not be disposed mid-move.
    /// </summary>
    private async Task FinishAbandonedAsync<TItem>(Task pending, Task<IAsyncEnumerator<TItem>> enumerator, Slot slot)
    {
        var failed = true;
        try
        {
            try
            {
                await pending.ConfigureAwait(false);
                failed = false;
            }
            catch (Exception)
            {
                // The consumer already got its TimeoutException or OperationCanceledException; nobody reads this one.
            }
            if (enumerator.IsCompletedSuccessfully)
                await enumerator.Result.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A producer's finally block threw while being disposed, after its consumer left.
        }
        finally
        {
            End(slot, failed);
        }
    }

    // ---- Replicas on other nodes: refusals and lost nodes (exceptional paths only) ------------------------------

    /// <summary>How many times one call may be refused by full remote replicas before it fails with <see cref="BackPressureException"/>.</summary>
    internal const int MaxRefusals = 8;

    /// <summary>What one call has spent on trying again: refusals so far, and whether its one retry after a lost node is used.</summary>
    private struct Retries
    {
        public int Refusals;
        public bool RetriedLost;
    }

    private enum Outcome
    {
        Succeeded,
        Failed,
        // A remote replica turned the call away before running it: the slot goes back without counting a call.
        Refused,
    }

    /// <summary>
    /// Whether a try that failed with <paramref name="e"/> is tried again on another replica: always after a refusal
    /// (<see cref="ReacquireAsync"/> bounds how often), once after a lost node when the deployment's
    /// <see cref="DeploymentOptions.RetryOnNodeFailure"/> is on and the caller is still waiting. A lost node's replicas
    /// leave the router at once either way, so no later call picks them.
    /// </summary>
    private bool ShouldRetry(ServeException e, ref Retries retries, CancellationToken cancellationToken)
    {
        switch (e)
        {
            case ReplicaRefusedException:
                retries.Refusals++;
                return true;
            case ReplicaLostException lost:
                _router.DropNode(lost.NodeId);
                if (retries.RetriedLost || !_router.RetryOnNodeFailure || cancellationToken.IsCancellationRequested)
                    return false;
                retries.RetriedLost = true;
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// The replica for the next try after a refusal or a lost node: another one with room, or a place in the queue.
    /// Refusals back off (a full remote replica frees up with time, not with our calls) and are bounded, so a call
    /// cannot bounce between full replicas for ever.
    /// </summary>
    private async ValueTask<IReplica> ReacquireAsync(Retries retries, CancellationToken cancellationToken)
    {
        if (retries.Refusals >= MaxRefusals)
            throw _router.RefusedError(retries.Refusals);
        if (retries.Refusals > 1)
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1 << (retries.Refusals - 1), 32)), cancellationToken).ConfigureAwait(false);
        return await AcquireAsync(cancellationToken).ConfigureAwait(false);
    }

    // ---- The slot a call holds --------------------------------------------------------------------------------

    /// <summary>A call's hold on a replica: the slot, when the call started (latency), and the token the method sees.</summary>
    private readonly struct Slot(IReplica replica, long started, CancellationTokenSource? linked, CancellationToken token)
    {
        public IReplica Replica { get; } = replica;
        public long Started { get; } = started;
        public CancellationTokenSource? Linked { get; } = linked;
        public CancellationToken Token { get; } = token;
    }

    /// <summary>
    /// Starts a call on an acquired slot. The token the replica method sees is the caller's (which carries any timeout)
    /// together with the replica's abort token, cancelled when the replica stops with the call still running after its
    /// graceful shutdown timeout. A call without a token of its own gets the abort token as it is (no allocation);
    /// otherwise the two are linked for the call's duration (disposed by <see cref="End(in Slot, bool)"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Slot Begin(IReplica replica, CancellationToken caller)
    {
        var started = _router.CallStarting();
        if (!caller.CanBeCanceled)
            return new Slot(replica, started, null, replica.AbortToken);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(caller, replica.AbortToken);
        return new Slot(replica, started, linked, linked.Token);
    }

    /// <summary>Ends a call: frees its linked token and releases its slot with the outcome (metrics, the router's queue).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void End(in Slot slot, bool failed)
    {
        slot.Linked?.Dispose();
        _router.Release(slot.Replica, slot.Started, failed);
    }

    private void End(in Slot slot, Outcome outcome)
    {
        if (outcome != Outcome.Refused)
        {
            End(slot, outcome == Outcome.Failed);
            return;
        }
        slot.Linked?.Dispose();
        _router.Release(slot.Replica);
    }

    /// <summary>True when a call was cancelled by its replica stopping, not by its caller.</summary>
    private static bool IsStopped(IReplica replica, CancellationToken caller) =>
        replica.AbortToken.IsCancellationRequested && !caller.IsCancellationRequested;

    private static Exception StoppedOr(Exception e, IReplica replica, CancellationToken caller) =>
        e is OperationCanceledException && IsStopped(replica, caller) ? replica.StoppedError(e) : e;
}
