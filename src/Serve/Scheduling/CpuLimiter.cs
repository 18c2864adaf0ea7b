using System.Runtime.CompilerServices;
using Serve.CodeGeneration;

namespace Serve.Scheduling;

/// <summary>
/// Bounds how many threads run one replica's calls at once (its <see cref="DeploymentOptions.NumCpus"/>, rounded up).
/// A call whose replica has a free CPU slot runs inline on the caller's thread, as without a limit (two interlocked
/// operations, no allocation); otherwise, after a brief spin for a slot (<see cref="SpinEnter"/>), it waits in this
/// limiter's FIFO queue and runs on a thread-pool thread when a slot frees up. A slot is held for the synchronous part
/// of a call (until the user method returns its task). Queued calls run outside any task scheduler, so inside them
/// <see cref="TaskScheduler.Current"/> is the default one, as for inline calls: their continuations, and tasks or
/// <c>Parallel</c> loops they start, are not limited (and cannot deadlock waiting for a slot their own call holds).
/// </summary>
/// <remarks>
/// A queued call leaves the queue as soon as its token is cancelled (the caller's token, the handle's timeout, or the
/// replica's abort token when it stops) and fails with <see cref="OperationCanceledException"/> without ever running;
/// a call taken from the queue checks its token once more before it starts.
/// </remarks>
internal sealed class CpuLimiter
{
    /// <summary>No limit: <see cref="Queue{TState, TResult}"/> on it only moves a call off its caller's thread.</summary>
    public static CpuLimiter Unlimited { get; } = new(0);

    // Guards the queue links; never held while user code or a caller's continuation runs.
    private readonly Lock _lock = new();
    private WorkItem? _head;
    private WorkItem? _tail;
    private readonly int _threads;
    private int _free;
    // Queued work items not yet taken from the queue; read on every Exit instead of taking the lock.
    private int _waiting;

    public CpuLimiter(int threads)
    {
        _threads = threads;
        _free = threads;
    }

    public int Threads => _threads;

    /// <summary>The threads a replica with <paramref name="numCpus"/> CPUs may use; 0 means unlimited (no limiter).</summary>
    public static int ThreadsFor(double numCpus) => numCpus > 0 ? Math.Max(1, (int)Math.Ceiling(numCpus - 1e-9)) : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnter()
    {
        var free = Volatile.Read(ref _free);
        while (free > 0)
        {
            var seen = Interlocked.CompareExchange(ref _free, free - 1, free);
            if (seen == free)
                return true;
            free = seen;
        }
        return false;
    }

    /// <summary>
    /// Waits briefly for a slot, as <see cref="SemaphoreSlim"/> spins before it blocks: the slot is usually held by
    /// another call's short synchronous part, and a queued call costs a task (~200 B) and a thread hop. Stops as soon
    /// as work is queued (a caller racing with that enqueue may still get the slot first, but spinners cannot starve
    /// queued work), and never yields the thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SpinEnter()
    {
        var spinner = new SpinWait();
        while (!spinner.NextSpinWillYield && Volatile.Read(ref _waiting) == 0)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (TryEnter())
                return true;
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
        // The interlocked increment is a full fence: either a queuer sees the free slot, or we see its work here.
        Interlocked.Increment(ref _free);
        if (Volatile.Read(ref _waiting) != 0)
            Dispatch();
    }

    /// <summary>Runs the synchronous part of a call inline when a slot is free, else queued (see <see cref="CpuLimiter"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<TResult> Invoke<TArgs, TResult>(TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        if (!TryEnter() && !SpinEnter())
            return Schedule<TArgs, TResult>(arguments, instance, cancellationToken);
        try
        {
            return arguments.InvokeAsync(instance, cancellationToken);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>The void-call counterpart of <see cref="Invoke{TArgs, TResult}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask InvokeVoid<TArgs>(TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (!TryEnter() && !SpinEnter())
            return ScheduleVoid(arguments, instance, cancellationToken);
        try
        {
            return arguments.InvokeAsync(instance, cancellationToken);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Runs <paramref name="start"/> (the synchronous part of a call) under the limit; a static lambda and a state tuple
    /// keep the inline path allocation-free. <paramref name="cancellationToken"/> is the call's token: it takes a queued
    /// call out of the queue.
    /// </summary>
    public ValueTask<TResult> Run<TState, TResult>(TState state, Func<TState, ValueTask<TResult>> start, CancellationToken cancellationToken)
    {
        if (!TryEnter() && !SpinEnter())
            return Enqueue(new ValueItem<TState, TResult>(this, state, start, cancellationToken));
        try
        {
            return start(state);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>The void counterpart of <see cref="Run{TState, TResult}"/>.</summary>
    public ValueTask RunVoid<TState>(TState state, Func<TState, ValueTask> start, CancellationToken cancellationToken)
    {
        if (!TryEnter() && !SpinEnter())
            return Enqueue(new VoidItem<TState>(this, state, start, cancellationToken));
        try
        {
            return start(state);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Runs <paramref name="start"/> under the limit like <see cref="Run{TState, TResult}"/>, but never on the caller's
    /// thread (one hop to the thread pool, or the queue when no slot is free): the caller gets a pending task at once
    /// even when the method blocks its thread, so it can stop waiting at a deadline.
    /// </summary>
    public ValueTask<TResult> Queue<TState, TResult>(TState state, Func<TState, ValueTask<TResult>> start, CancellationToken cancellationToken) =>
        Send(new ValueItem<TState, TResult>(this, state, start, cancellationToken));

    /// <summary>The void counterpart of <see cref="Queue{TState, TResult}"/>.</summary>
    public ValueTask QueueVoid<TState>(TState state, Func<TState, ValueTask> start, CancellationToken cancellationToken) =>
        Send(new VoidItem<TState>(this, state, start, cancellationToken));

    // The queued paths live in their own methods: a lambda (or a tuple of a generic struct) built only there costs the
    // inline path nothing.
    private ValueTask<TResult> Schedule<TArgs, TResult>(TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult> =>
        Enqueue(new ValueItem<(TArgs Arguments, object Instance, CancellationToken Token), TResult>(
            this, (arguments, instance, cancellationToken), static s => s.Arguments.InvokeAsync(s.Instance, s.Token), cancellationToken));

    private ValueTask ScheduleVoid<TArgs>(TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation =>
        Enqueue(new VoidItem<(TArgs Arguments, object Instance, CancellationToken Token)>(
            this, (arguments, instance, cancellationToken), static s => s.Arguments.InvokeAsync(s.Instance, s.Token), cancellationToken));

    /// <summary>Hands <paramref name="item"/> to the thread pool with a slot when one is free, else queues it.</summary>
    private ValueTask<TResult> Send<TState, TResult>(ValueItem<TState, TResult> item)
    {
        if (item.Token.IsCancellationRequested)
            return ValueTask.FromCanceled<TResult>(item.Token);
        if (_threads == 0 || TryEnter())
        {
            ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
            return item.ResultAsync();
        }
        return Enqueue(item);
    }

    private ValueTask Send<TState>(VoidItem<TState> item)
    {
        if (item.Token.IsCancellationRequested)
            return ValueTask.FromCanceled(item.Token);
        if (_threads == 0 || TryEnter())
        {
            ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
            return item.ResultAsync();
        }
        return Enqueue(item);
    }

    private ValueTask<TResult> Enqueue<TState, TResult>(ValueItem<TState, TResult> item)
    {
        Enqueue((WorkItem)item);
        return item.ResultAsync();
    }

    private ValueTask Enqueue<TState>(VoidItem<TState> item)
    {
        Enqueue((WorkItem)item);
        return item.ResultAsync();
    }

    private void Enqueue(WorkItem item)
    {
        // Registered before the item is linked, so a worker that takes it always finds the registration to undo.
        if (item.Token.CanBeCanceled)
            item.Registration = item.Token.UnsafeRegister(static s => ((WorkItem)s!).Limiter.Cancel((WorkItem)s!), item);
        bool queued;
        lock (_lock)
        {
            queued = !item.Cancelled;
            if (queued)
            {
                item.Previous = _tail;
                if (_tail is null)
                    _head = item;
                else
                    _tail.Next = item;
                _tail = item;
                item.Queued = true;
                // A full fence after linking pairs with the one in Exit: either Exit sees this item, or we see its slot.
                Interlocked.Increment(ref _waiting);
            }
        }
        if (!queued)
        {
            // The token was cancelled before the item was linked (the registration ran inline): it never queued.
            item.Registration.Dispose();
            item.CompleteCancelled();
            return;
        }
        Dispatch();
    }

    /// <summary>Takes a cancelled call out of the queue and fails it; one already taken runs, and sees its token.</summary>
    private void Cancel(WorkItem item)
    {
        lock (_lock)
        {
            item.Cancelled = true;
            if (!item.Queued)
                return;
            Unlink(item);
        }
        // Not inline: this runs inside CancellationTokenSource.Cancel (a caller's, a timer's, a stopping replica's),
        // which should not run callers' continuations.
        ThreadPool.UnsafeQueueUserWorkItem(static i => i.CompleteCancelled(), item, preferLocal: false);
    }

    private void Unlink(WorkItem item)
    {
        if (item.Previous is null)
            _head = item.Next;
        else
            item.Previous.Next = item.Next;
        if (item.Next is null)
            _tail = item.Previous;
        else
            item.Next.Previous = item.Previous;
        item.Next = item.Previous = null;
        item.Queued = false;
        Interlocked.Decrement(ref _waiting);
    }

    private WorkItem? TryDequeue()
    {
        lock (_lock)
        {
            var item = _head;
            if (item is not null)
                Unlink(item);
            return item;
        }
    }

    /// <summary>Starts queued calls while slots are free: each one taken from the queue goes to the thread pool holding its slot.</summary>
    private void Dispatch()
    {
        while (Volatile.Read(ref _waiting) != 0 && TryEnter())
        {
            if (TryDequeue() is { } item)
            {
                ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
                continue;
            }
            // Cancelled or taken meanwhile: give the slot back; the loop looks at the queue again (the increment is a
            // full fence, so an item queued meanwhile is seen here or sees the slot).
            Interlocked.Increment(ref _free);
        }
    }

    /// <summary>One call run off its caller's thread: queued for a slot, or sent to the thread pool holding one.</summary>
    private abstract class WorkItem(CpuLimiter limiter, CancellationToken token) : IThreadPoolWorkItem
    {
        // The caller's ambient state (activity, model id, request scope), as Task.Run would flow it.
        private readonly ExecutionContext? _context = ExecutionContext.Capture();

        public CpuLimiter Limiter { get; } = limiter;
        public CancellationToken Token { get; } = token;
        public CancellationTokenRegistration Registration;

        // Guarded by the limiter's lock.
        public WorkItem? Next;
        public WorkItem? Previous;
        public bool Queued;
        public bool Cancelled;

        /// <summary>Runs on a thread-pool thread holding a slot (none for <see cref="Unlimited"/>).</summary>
        public void Execute()
        {
            Registration.Unregister();
            // Checked once more here: a call cancelled after it left the queue (or sent straight here) never starts.
            var cancelled = Token.IsCancellationRequested;
            try
            {
                if (!cancelled && _context is null)
                    Start();
                else if (!cancelled)
                    ExecutionContext.Run(_context!, static s => ((WorkItem)s!).Start(), this);
            }
            finally
            {
                if (Limiter._threads != 0)
                    Limiter.Exit();
            }
            // After the slot is free: the caller's continuation may run on this thread, and must not hold it.
            if (cancelled)
                CompleteCancelled();
            else
                Complete();
        }

        /// <summary>Calls the user method; keeps its outcome for <see cref="Complete"/>.</summary>
        protected abstract void Start();

        protected abstract void Complete();

        public abstract void CompleteCancelled();
    }

    /// <summary>A queued call's synchronous part and what it returned (its pending result, or the exception it threw).</summary>
    private abstract class StartedItem<TPending>(CpuLimiter limiter, CancellationToken token) : WorkItem(limiter, token)
    {
        private readonly TaskCompletionSource<TPending> _started = new();
        private TPending _pending = default!;
        private Exception? _error;

        protected Task<TPending> Started => _started.Task;

        /// <summary>Calls the user method and returns its pending result.</summary>
        protected abstract TPending Call();

        protected override void Start()
        {
            try
            {
                _pending = Call();
            }
            catch (Exception e)
            {
                _error = e;
            }
        }

        protected override void Complete()
        {
            if (_error is null)
                _started.TrySetResult(_pending);
            else
                _started.TrySetException(_error);
        }

        public override void CompleteCancelled() => _started.TrySetCanceled(Token);
    }

    private sealed class ValueItem<TState, TResult>(CpuLimiter limiter, TState state, Func<TState, ValueTask<TResult>> start, CancellationToken token)
        : StartedItem<ValueTask<TResult>>(limiter, token)
    {
        protected override ValueTask<TResult> Call() => start(state);

        public async ValueTask<TResult> ResultAsync()
        {
            var pending = await Started.ConfigureAwait(false);
            return await pending.ConfigureAwait(false);
        }
    }

    private sealed class VoidItem<TState>(CpuLimiter limiter, TState state, Func<TState, ValueTask> start, CancellationToken token)
        : StartedItem<ValueTask>(limiter, token)
    {
        protected override ValueTask Call() => start(state);

        public async ValueTask ResultAsync()
        {
            var pending = await Started.ConfigureAwait(false);
            await pending.ConfigureAwait(false);
        }
    }
}
