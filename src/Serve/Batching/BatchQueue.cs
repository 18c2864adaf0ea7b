using System.ComponentModel;
using System.Diagnostics;
using System.Threading.Tasks.Sources;

namespace Serve.Batching;

/// <summary>
/// The batch queue of one <see cref="BatchAttribute"/> method on one replica: its settings, changeable at run time,
/// and how many calls wait. The generator gives each <c>[Batch]</c> method <c>M</c> a private property
/// <c>MBatch</c> of this type on the deployment class; set its properties from the constructor or from
/// <see cref="IReconfigurable{TConfig}.ReconfigureAsync"/> to change batching without restarting the replica.
/// </summary>
/// <remarks>
/// A changed <see cref="MaxBatchSize"/> or <see cref="MaxConcurrentBatches"/> applies at once, also to calls already
/// waiting; a changed <see cref="BatchWaitTimeout"/> applies to batches opened after the change.
/// </remarks>
public abstract class BatchQueue
{
    // Who wants to hear of each batch this queue starts (the host's batch-size metric); set once the replica has started.
    private Action<string, int>? _onBatch;

    /// <summary>Calls <paramref name="onBatch"/> with the method name and size of every batch this queue starts.</summary>
    internal void Observe(Action<string, int> onBatch) => Volatile.Write(ref _onBatch, onBatch);

    private protected void ReportBatch(int size) => Volatile.Read(ref _onBatch)?.Invoke(MethodName, size);

    private protected readonly object Lock = new();
    private int _maxBatchSize;
    private int _maxConcurrentBatches;
    private TimeSpan _batchWaitTimeout;
    private protected long WaitTicks;

    private protected BatchQueue(string methodName, int maxBatchSize, int batchWaitTimeoutMs, int maxConcurrentBatches)
    {
        MethodName = methodName;
        _maxBatchSize = CheckMaxBatchSize(maxBatchSize);
        _maxConcurrentBatches = CheckMaxConcurrentBatches(maxConcurrentBatches);
        var wait = TimeSpan.FromMilliseconds(batchWaitTimeoutMs);
        _batchWaitTimeout = CheckBatchWaitTimeout(wait);
        WaitTicks = ToStopwatchTicks(wait);
    }

    /// <summary>The batched method, <c>Class.Method</c>.</summary>
    public string MethodName { get; }

    /// <summary>The most calls in one batch (1 or more).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int MaxBatchSize
    {
        get => Volatile.Read(ref _maxBatchSize);
        set
        {
            CheckMaxBatchSize(value);
            lock (Lock)
                _maxBatchSize = value;
            SettingsChanged();
        }
    }

    /// <summary>How long a batch's oldest call waits for the batch to fill (zero or more).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or longer than <see cref="int.MaxValue"/> milliseconds.</exception>
    public TimeSpan BatchWaitTimeout
    {
        get
        {
            lock (Lock)
                return _batchWaitTimeout;
        }
        set
        {
            CheckBatchWaitTimeout(value);
            lock (Lock)
            {
                _batchWaitTimeout = value;
                WaitTicks = ToStopwatchTicks(value);
            }
        }
    }

    /// <summary>How many batches of this method the replica runs at once (1 or more).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int MaxConcurrentBatches
    {
        get => Volatile.Read(ref _maxConcurrentBatches);
        set
        {
            CheckMaxConcurrentBatches(value);
            lock (Lock)
                _maxConcurrentBatches = value;
            SettingsChanged();
        }
    }

    /// <summary>Calls waiting for their batch to start.</summary>
    public abstract int QueuedCalls { get; }

    /// <summary>Batches running now.</summary>
    public abstract int RunningBatches { get; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{MethodName}: MaxBatchSize = {MaxBatchSize}, BatchWaitTimeout = {BatchWaitTimeout.TotalMilliseconds} ms, MaxConcurrentBatches = {MaxConcurrentBatches}";

    private protected abstract void SettingsChanged();

    /// <summary>
    /// Called when the replica starts stopping: from now on, waiting batches start without waiting for more calls (as
    /// their slots allow), so draining the replica does not wait for their <see cref="BatchWaitTimeout"/>.
    /// </summary>
    internal abstract void StartWaitingNow();

    private int CheckMaxBatchSize(int value) => value >= 1 ? value
        : throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), value, $"Batch method '{MethodName}': MaxBatchSize = {value} is out of range; use 1 or more.");

    private int CheckMaxConcurrentBatches(int value) => value >= 1 ? value
        : throw new ArgumentOutOfRangeException(nameof(MaxConcurrentBatches), value, $"Batch method '{MethodName}': MaxConcurrentBatches = {value} is out of range; use 1 or more.");

    private TimeSpan CheckBatchWaitTimeout(TimeSpan value) => value >= TimeSpan.Zero && value.TotalMilliseconds <= int.MaxValue ? value
        : throw new ArgumentOutOfRangeException(nameof(BatchWaitTimeout), value, $"Batch method '{MethodName}': BatchWaitTimeout = {value} is out of range; use zero (do not wait) up to {int.MaxValue} ms.");

    private static long ToStopwatchTicks(TimeSpan value) => (long)(value.TotalSeconds * Stopwatch.Frequency);
}

/// <summary>
/// The batch queue of a <c>[Batch]</c> method taking <c>IReadOnlyList&lt;TItem&gt;</c> and returning
/// <c>IReadOnlyList&lt;TResult&gt;</c>. Created by generated code, one per method and replica instance; not for user code.
/// </summary>
/// <typeparam name="TItem">One call's input.</typeparam>
/// <typeparam name="TResult">One call's result.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class BatchQueue<TItem, TResult> : BatchQueue
{
    // Half a millisecond: a timer that fires a little early still closes the batch it was armed for.
    private static readonly long s_tolerance = Stopwatch.Frequency / 2000;

    private readonly Func<object, IReadOnlyList<TItem>, CancellationToken, ValueTask<IReadOnlyList<TResult>>> _method;
    private readonly List<Batch> _waiting = [];
    private Timer? _timer;
    private long _timerDue = long.MinValue;
    private object? _instance;
    private bool _stopping;
    private int _queued;
    private int _running;

    /// <summary>Creates the queue; called from the generated field initializer.</summary>
    /// <param name="methodName">The batched method, <c>Class.Method</c>, for settings and errors.</param>
    /// <param name="maxBatchSize">The attribute's <see cref="BatchAttribute.MaxBatchSize"/>.</param>
    /// <param name="batchWaitTimeoutMs">The attribute's <see cref="BatchAttribute.BatchWaitTimeoutMs"/>.</param>
    /// <param name="maxConcurrentBatches">The attribute's <see cref="BatchAttribute.MaxConcurrentBatches"/>.</param>
    /// <param name="method">Calls the user method on the instance with one batch.</param>
    public BatchQueue(string methodName, int maxBatchSize, int batchWaitTimeoutMs, int maxConcurrentBatches,
        Func<object, IReadOnlyList<TItem>, CancellationToken, ValueTask<IReadOnlyList<TResult>>> method)
        : base(methodName, maxBatchSize, batchWaitTimeoutMs, maxConcurrentBatches)
    {
        ArgumentNullException.ThrowIfNull(method);
        _method = method;
    }

    /// <inheritdoc />
    public override int QueuedCalls => Volatile.Read(ref _queued);

    /// <inheritdoc />
    public override int RunningBatches => Volatile.Read(ref _running);

    /// <summary>
    /// Adds one call to the open batch of <paramref name="instance"/> and completes with its result once its batch
    /// has run. Cancelling <paramref name="cancellationToken"/> before the batch starts removes the call at once;
    /// after it started, the batch's token is cancelled when every call in it was cancelled.
    /// </summary>
    public ValueTask<TResult> EnqueueAsync(object instance, TItem item, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<TResult>(cancellationToken);
        var call = new Call(this, item, cancellationToken);
        if (Observability.ServeTracing.Enabled)
            call.Caller = Activity.Current;
        List<Batch>? start;
        lock (Lock)
        {
            _instance ??= instance;
            var now = Stopwatch.GetTimestamp();
            // Calls for different models (handle.WithModelId) never share a batch.
            var modelId = ReplicaContext.CurrentModelId;
            Batch? batch = null;
            for (var i = _waiting.Count - 1; i >= 0; i--)
            {
                if (string.Equals(_waiting[i].ModelId, modelId, StringComparison.Ordinal))
                {
                    batch = _waiting[i];
                    break;
                }
            }
            if (batch is null || batch.Calls.Count >= MaxBatchSize)
            {
                batch = new Batch(this, now + WaitTicks, modelId);
                _waiting.Add(batch);
            }
            batch.Calls.Add(call);
            call.Batch = batch;
            _queued++;
            start = TakeStartableLocked(now);
            ArmTimerLocked(now);
        }
        if (cancellationToken.CanBeCanceled)
        {
            call.Registration = cancellationToken.UnsafeRegister(static (state, _) => ((Call)state!).OnCancelled(), call);
            if (call.IsCompleted)
                call.Registration.Unregister();
        }
        Start(start);
        return new ValueTask<TResult>(call, call.Version);
    }

    internal override void StartWaitingNow()
    {
        lock (Lock)
            _stopping = true;
        SettingsChanged();
    }

    private protected override void SettingsChanged()
    {
        List<Batch>? start;
        lock (Lock)
        {
            var now = Stopwatch.GetTimestamp();
            start = TakeStartableLocked(now);
            ArmTimerLocked(now);
        }
        Start(start);
    }

    /// <summary>
    /// Removes the batches that may start now, oldest first: full, or their oldest call waited long enough. (Only the
    /// newest batch of each model id can be short of full.)
    /// </summary>
    private List<Batch>? TakeStartableLocked(long now)
    {
        List<Batch>? result = null;
        var max = MaxBatchSize;
        var index = 0;
        while (_running < MaxConcurrentBatches && index < _waiting.Count)
        {
            var head = _waiting[index];
            if (head.Calls.Count == 0)
            {
                _waiting.RemoveAt(index);
                continue;
            }
            if (head.Calls.Count < max && head.Deadline > now + s_tolerance && !_stopping)
            {
                index++;
                continue;
            }
            _waiting.RemoveAt(index);
            if (head.Calls.Count > max)
            {
                // MaxBatchSize was lowered while these calls waited: the rest form the next batch, as old as this one.
                var rest = new Batch(this, head.Deadline, head.ModelId);
                for (var i = max; i < head.Calls.Count; i++)
                {
                    head.Calls[i].Batch = rest;
                    rest.Calls.Add(head.Calls[i]);
                }
                head.Calls.RemoveRange(max, head.Calls.Count - max);
                _waiting.Insert(index, rest);
            }
            var cancellable = false;
            foreach (var call in head.Calls)
            {
                call.State = CallState.Running;
                cancellable |= call.Token.CanBeCanceled;
            }
            if (cancellable)
                head.Cancellation = new CancellationTokenSource();
            _queued -= head.Calls.Count;
            _running++;
            (result ??= []).Add(head);
        }
        return result;
    }

    /// <summary>Arms the timer for the earliest deadline of a batch that only its deadline keeps from starting.</summary>
    private void ArmTimerLocked(long now)
    {
        if (_running >= MaxConcurrentBatches || _waiting.Count == 0)
            return;
        var deadline = long.MaxValue;
        foreach (var batch in _waiting)
        {
            if (batch.Calls.Count > 0 && batch.Deadline < deadline)
                deadline = batch.Deadline;
        }
        if (deadline == long.MaxValue || deadline == _timerDue)
            return;
        _timerDue = deadline;
        if (_timer is null)
        {
            using (ExecutionContext.SuppressFlow())
                _timer = new Timer(static state => ((BatchQueue<TItem, TResult>)state!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
        }
        var ms = Math.Max(1, (long)Math.Ceiling((deadline - now) * 1000.0 / Stopwatch.Frequency));
        _timer.Change(Math.Min(ms, int.MaxValue), Timeout.Infinite);
    }

    private void OnTimer()
    {
        List<Batch>? start;
        lock (Lock)
        {
            _timerDue = long.MinValue;
            var now = Stopwatch.GetTimestamp();
            start = TakeStartableLocked(now);
            ArmTimerLocked(now);
        }
        Start(start);
    }

    private static void Start(List<Batch>? batches)
    {
        if (batches is null)
            return;
        // One hop per batch: the batch never runs on a caller's or the timer's thread.
        foreach (var batch in batches)
            ThreadPool.UnsafeQueueUserWorkItem(batch, preferLocal: false);
    }

    private async Task RunAsync(Batch batch)
    {
        var calls = batch.Calls;
        var count = calls.Count;
        ReportBatch(count);
        var items = new TItem[count];
        for (var i = 0; i < count; i++)
            items[i] = calls[i].Item;

        IReadOnlyList<TResult>? results = null;
        Exception? error = null;
        // The batch's model id is the current call's for the method (ReplicaContext.ModelId); this async flow only.
        ReplicaContext.EnterModel(batch.ModelId);
        // The batch's span, current while the method runs, linked to the spans of the calls it serves.
        using var activity = Observability.ServeTracing.Enabled ? Observability.ServeTracing.StartBatch(MethodName, count, Links(calls)) : null;
        try
        {
            results = await _method(Volatile.Read(ref _instance)!, items, batch.Cancellation?.Token ?? CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }
        if (error is null && (results is null || results.Count != count))
        {
            error = new InvalidOperationException(
                $"Batch method '{MethodName}' returned {(results is null ? "null" : results.Count + " result(s)")} for a batch of {count} call(s); " +
                "a [Batch] method must return exactly one result per input, in input order. Every call of this batch failed.");
        }
        if (error is not null)
            Observability.ServeTracing.Failed(activity, error);
        for (var i = 0; i < count; i++)
        {
            var call = calls[i];
            if (error is not null)
                call.Fail(error);
            else if (call.CancelRequested)
                call.Fail(new OperationCanceledException(call.Token));
            else
                call.Succeed(results![i]);
        }
        batch.Cancellation?.Dispose();

        List<Batch>? start;
        lock (Lock)
        {
            _running--;
            var now = Stopwatch.GetTimestamp();
            start = TakeStartableLocked(now);
            ArmTimerLocked(now);
        }
        Start(start);
    }

    private static List<ActivityLink>? Links(List<Call> calls)
    {
        List<ActivityLink>? links = null;
        foreach (var call in calls)
        {
            if (call.Caller is not { } caller)
                continue;
            (links ??= new List<ActivityLink>(calls.Count)).Add(new ActivityLink(caller.Context));
            // The handle call's own span (it waits for this batch, so nothing else touches it now) learns its batch's size.
            if (ReferenceEquals(caller.Source, Observability.ServeTracing.Source) && caller.IsAllDataRequested)
                caller.SetTag(Observability.ServeTracing.BatchSizeTag, calls.Count);
        }
        return links;
    }

    private void Cancel(Call call)
    {
        var removed = false;
        List<Batch>? start = null;
        Batch? running = null;
        lock (Lock)
        {
            switch (call.State)
            {
                case CallState.Queued:
                    var batch = call.Batch!;
                    batch.Calls.Remove(call);
                    if (batch.Calls.Count == 0)
                        _waiting.Remove(batch);
                    _queued--;
                    call.State = CallState.Done;
                    removed = true;
                    var now = Stopwatch.GetTimestamp();
                    start = TakeStartableLocked(now);
                    ArmTimerLocked(now);
                    break;
                case CallState.Running:
                    call.CancelRequested = true;
                    running = call.Batch;
                    break;
            }
        }
        if (removed)
        {
            call.Fail(new OperationCanceledException(call.Token));
            Start(start);
        }
        else if (running is not null && Interlocked.Increment(ref running.CancelledCount) == running.Calls.Count)
        {
            // Every caller of this batch gave up: the method's token says so, so the replica is free again soon.
            try
            {
                running.Cancellation?.Cancel();
            }
            catch (AggregateException)
            {
                // A callback in user code threw; the callers are already cancelled.
            }
            catch (ObjectDisposedException)
            {
                // The batch finished meanwhile.
            }
        }
    }

    private enum CallState
    {
        Queued,
        Running,
        Done,
    }

    private sealed class Batch(BatchQueue<TItem, TResult> queue, long deadline, string? modelId) : IThreadPoolWorkItem
    {
        public readonly List<Call> Calls = [];
        public readonly long Deadline = deadline;
        public readonly string? ModelId = modelId;
        public CancellationTokenSource? Cancellation;
        public int CancelledCount;

        public void Execute() => _ = queue.RunAsync(this);
    }

    private sealed class Call(BatchQueue<TItem, TResult> queue, TItem item, CancellationToken token) : IValueTaskSource<TResult>
    {
        private ManualResetValueTaskSourceCore<TResult> _core = new() { RunContinuationsAsynchronously = true };
        private int _completed;

        public readonly TItem Item = item;
        public readonly CancellationToken Token = token;
        // The span current when the item came (its handle call's), when someone listens to Serve's spans.
        public Activity? Caller;
        public Batch? Batch;
        public CallState State;
        public bool CancelRequested;
        public CancellationTokenRegistration Registration;

        public short Version => _core.Version;
        public bool IsCompleted => Volatile.Read(ref _completed) != 0;

        public void OnCancelled() => queue.Cancel(this);

        public void Succeed(TResult result)
        {
            if (Interlocked.Exchange(ref _completed, 1) != 0)
                return;
            Registration.Unregister();
            _core.SetResult(result);
        }

        public void Fail(Exception error)
        {
            if (Interlocked.Exchange(ref _completed, 1) != 0)
                return;
            Registration.Unregister();
            _core.SetException(error);
        }

        public TResult GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
