using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Serve.CodeGeneration;

namespace Serve.Scheduling;

/// <summary>
/// Bounds how many threads run one replica's calls at once (its <see cref="DeploymentOptions.NumCpus"/>, rounded up).
/// A call whose replica has a free CPU slot runs inline on the caller's thread, as without a limit (two interlocked
/// operations, no allocation); otherwise, after a brief spin for a slot (<see cref="SpinEnter"/>), it is queued to
/// this scheduler, which runs at most <see cref="Threads"/>
/// work items at a time, inline callers included. A slot is held for the synchronous part of a call (until the user
/// method returns its task). Queued calls run with <see cref="TaskCreationOptions.HideScheduler"/>, so inside them
/// <see cref="TaskScheduler.Current"/> is the default scheduler, as for inline calls: their continuations, and tasks
/// or <c>Parallel</c> loops they start, are not limited (and cannot deadlock waiting for a slot their own call holds).
/// </summary>
internal sealed class CpuLimiter : TaskScheduler
{
    private readonly ConcurrentQueue<Task> _queue = new();
    private readonly int _threads;
    private int _free;
    // Queued work items not yet taken by a worker; read on every Exit instead of ConcurrentQueue.IsEmpty, which is
    // several times dearer than one field read.
    private int _waiting;

    [ThreadStatic]
    private static CpuLimiter? t_current;

    public CpuLimiter(int threads)
    {
        _threads = threads;
        _free = threads;
    }

    public int Threads => _threads;

    public override int MaximumConcurrencyLevel => _threads;

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

    /// <summary>Runs the synchronous part of a call inline when a slot is free, else on this scheduler.</summary>
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

    /// <summary>Runs <paramref name="start"/> (the synchronous part of a call) under the limit; a static lambda and a state tuple keep the inline path allocation-free.</summary>
    public ValueTask<TResult> Run<TState, TResult>(TState state, Func<TState, ValueTask<TResult>> start)
    {
        if (!TryEnter() && !SpinEnter())
            return ScheduleRun(state, start);
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
    public ValueTask RunVoid<TState>(TState state, Func<TState, ValueTask> start)
    {
        if (!TryEnter() && !SpinEnter())
            return ScheduleRunVoid(state, start);
        try
        {
            return start(state);
        }
        finally
        {
            Exit();
        }
    }

    // The queued paths live in their own methods: a lambda capturing a parameter makes C# allocate its closure when the
    // enclosing method starts, so inside Run it would cost every inline call ~56 B.
    private ValueTask<TResult> ScheduleRun<TState, TResult>(TState state, Func<TState, ValueTask<TResult>> start) =>
        new(Task.Factory.StartNew(() => start(state).AsTask(), CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, this).Unwrap());

    private ValueTask ScheduleRunVoid<TState>(TState state, Func<TState, ValueTask> start) =>
        new(Task.Factory.StartNew(() => start(state).AsTask(), CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, this).Unwrap());

    private ValueTask<TResult> Schedule<TArgs, TResult>(TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult> =>
        new(Task.Factory.StartNew(() => arguments.InvokeAsync(instance, cancellationToken).AsTask(), CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, this).Unwrap());

    private ValueTask ScheduleVoid<TArgs>(TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation =>
        new(Task.Factory.StartNew(() => arguments.InvokeAsync(instance, cancellationToken).AsTask(), CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, this).Unwrap());

    protected override void QueueTask(Task task)
    {
        _queue.Enqueue(task);
        // A full fence after the enqueue pairs with the one in Exit: either Exit sees this item, or we see its slot.
        Interlocked.Increment(ref _waiting);
        Dispatch();
    }

    private void Dispatch()
    {
        while (Volatile.Read(ref _waiting) != 0 && TryEnter())
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Work(), this, preferLocal: false);
    }

    private void Work()
    {
        t_current = this;
        try
        {
            while (_queue.TryDequeue(out var task))
            {
                Interlocked.Decrement(ref _waiting);
                TryExecuteTask(task);
            }
        }
        finally
        {
            t_current = null;
            Exit();
        }
    }

    // A task this scheduler owns may run inline only on one of its own workers, which already hold a slot.
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
        t_current == this && TryExecuteTask(task);

    protected override IEnumerable<Task> GetScheduledTasks() => [.. _queue];
}
