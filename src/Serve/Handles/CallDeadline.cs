namespace Serve;

/// <summary>
/// The cancellation of one handle call: the caller's token, the handle's <see cref="DeploymentHandle.Timeout"/> (if
/// any) and, for streams, the consumer stopping early, all in the one token the router queue and the replica method
/// see. Translates the timeout into a <see cref="TimeoutException"/> that names the deployment, method and timeout.
/// </summary>
/// <remarks>
/// When the caller gives up, the call's token is cancelled first (a queued call leaves the queue, the method sees
/// its token fire) and only then is the waiting caller released, so a caller that sees the exception never finds its
/// call still queued.
/// </remarks>
internal sealed class CallDeadline : IDisposable
{
    private const int Caller = 1;
    private const int Expired = 2;
    private const int Abandoned = 3;

    // Not disposed: a method that outlives its caller may still hold (and register on) its token.
    private readonly CancellationTokenSource _source = new();
    private readonly CancellationToken _caller;
    private readonly CancellationTokenRegistration _callerRegistration;
    private readonly Timer? _timer;
    private readonly DeploymentHandle _handle;
    private readonly int _methodId;
    private readonly TimeSpan? _timeout;
    private TaskCompletionSource? _gaveUp;
    private int _reason;

    public CallDeadline(DeploymentHandle handle, int methodId, TimeSpan? timeout, CancellationToken caller)
    {
        _handle = handle;
        _methodId = methodId;
        _timeout = timeout;
        _caller = caller;
        if (timeout is { } t)
        {
            using (ExecutionContext.SuppressFlow())
                _timer = new Timer(static state => ((CallDeadline)state!).GiveUp(Expired), this, t, System.Threading.Timeout.InfiniteTimeSpan);
        }
        if (caller.CanBeCanceled)
            _callerRegistration = caller.UnsafeRegister(static state => ((CallDeadline)state!).GiveUp(Caller), this);
    }

    /// <summary>The token the call passes on: to the router's queue and to the replica method.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>True when the timeout, not the caller, cancelled the call.</summary>
    public bool TimedOut => Volatile.Read(ref _reason) == Expired;

    /// <summary>The error a timed-out call fails with.</summary>
    public TimeoutException TimeoutError()
    {
        var method = "method #" + _methodId;
        foreach (var m in _handle.Definition.Methods)
        {
            if (m.MethodId == _methodId)
                method = m.Name;
        }
        return new TimeoutException(
            $"The call of {method} on deployment '{_handle.DeploymentName}' (application '{_handle.ApplicationName}') did not finish within " +
            $"{_timeout} (the handle's WithTimeout); its cancellation token was cancelled. Give it longer with handle.WithTimeout(...), " +
            "add replicas if calls wait for a slot, or make the method faster.");
    }

    /// <summary>Cancels the call's token because the consumer of a stream stopped early.</summary>
    public void Cancel() => GiveUp(Abandoned);

    private void GiveUp(int reason)
    {
        if (Interlocked.CompareExchange(ref _reason, reason, 0) != 0)
            return;
        try
        {
            _source.Cancel();
        }
        catch (AggregateException)
        {
            // A cancellation callback in user code threw; the call is being abandoned anyway.
        }
        Volatile.Read(ref _gaveUp)?.TrySetResult();
    }

    /// <summary>
    /// Waits for <paramref name="pending"/>, but no longer than the caller does: on a timeout or the caller's
    /// cancellation the caller gets its <see cref="TimeoutException"/> or <see cref="OperationCanceledException"/> at
    /// once, while the replica keeps the call's slot until the method, whose token is now cancelled, returns.
    /// </summary>
    public async ValueTask<T> WaitAsync<T>(ValueTask<T> pending)
    {
        try
        {
            if (!pending.IsCompleted)
            {
                var task = pending.AsTask();
                await WaitForEitherAsync(task).ConfigureAwait(false);
                pending = new ValueTask<T>(task);
            }
            return await pending.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (TimedOut)
        {
            throw TimeoutError();
        }
        finally
        {
            Dispose();
        }
    }

    /// <inheritdoc cref="WaitAsync{T}(ValueTask{T})"/>
    public async ValueTask WaitAsync(ValueTask pending)
    {
        try
        {
            if (!pending.IsCompleted)
            {
                var task = pending.AsTask();
                await WaitForEitherAsync(task).ConfigureAwait(false);
                pending = new ValueTask(task);
            }
            await pending.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (TimedOut)
        {
            throw TimeoutError();
        }
        finally
        {
            Dispose();
        }
    }

    /// <summary>
    /// Returns when <paramref name="task"/> completes, or throws the caller's <see cref="TimeoutException"/> or
    /// <see cref="OperationCanceledException"/> when the caller gave up first (the task is left running, its outcome observed).
    /// </summary>
    public async Task WaitForEitherAsync(Task task)
    {
        var gaveUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Dekker pairing with GiveUp: both sides write with a full fence (this exchange, its compare-exchange) before
        // reading the other's field, so a give-up racing with this line is seen by one side or the other.
        Interlocked.Exchange(ref _gaveUp, gaveUp);
        if (Volatile.Read(ref _reason) != 0)
            gaveUp.TrySetResult();
        if (await Task.WhenAny(task, gaveUp.Task).ConfigureAwait(false) == task)
            return;
        // The abandoned call's own outcome (usually its OperationCanceledException) has nobody left to read it.
        _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        if (TimedOut)
            throw TimeoutError();
        throw new OperationCanceledException(_caller);
    }

    /// <summary>Stops the timer and the caller registration; the token stays as it is for a method still holding it.</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        _callerRegistration.Dispose();
    }
}
