using System.Collections.Concurrent;

namespace Serve.Tests;

/// <summary>
/// Shared state of <see cref="SlotHog"/>: a gate that blocks a call's thread (ignoring its token, as CPU-bound code
/// does), and a record of which calls ran and whether any ran on a disposed instance.
/// </summary>
public sealed class SlotHogState
{
    private readonly ManualResetEventSlim _open = new();
    private int _blocked;
    public int Blocked => Volatile.Read(ref _blocked);
    public ConcurrentQueue<int> Ran { get; } = new();
    public ConcurrentQueue<string> AfterDispose { get; } = new();
    public ConcurrentBag<string> Disposed { get; } = new();
    public void Open() => _open.Set();

    public void Block()
    {
        Interlocked.Increment(ref _blocked);
        try
        {
            // Bounded, and not a TimeoutException: a broken test fails instead of hanging, and is not mistaken for a handle timeout.
            if (!_open.Wait(TimeSpan.FromSeconds(10)))
                throw new InvalidOperationException("the test never opened the gate");
        }
        finally
        {
            Interlocked.Decrement(ref _blocked);
        }
    }
}

/// <summary>
/// One CPU slot (<c>NumCpus = 1</c>) and room for many admitted calls, so that while <see cref="Block"/> holds the
/// slot, the calls admitted after it wait for the slot on the replica's CPU limiter. Every method records a call
/// made after <see cref="Dispose"/>.
/// </summary>
[Deployment(NumReplicas = 1, MaxOngoingRequests = 8, NumCpus = 1)]
public partial class SlotHog(SlotHogState state, ReplicaContext context) : IDisposable
{
    private volatile bool _disposed;

    /// <summary>Blocks its thread until the test opens the gate, ignoring cancellation.</summary>
    public int Block(int ticket)
    {
        Check(nameof(Block));
        state.Block();
        return ticket;
    }

    /// <summary>The void counterpart of <see cref="Block"/>.</summary>
    public void BlockVoid()
    {
        Check(nameof(BlockVoid));
        state.Block();
    }

    /// <summary>Records that it ran (ignoring its token, so only not running at all keeps it out of <see cref="SlotHogState.Ran"/>).</summary>
    public int Record(int ticket, CancellationToken cancellationToken)
    {
        Check(nameof(Record));
        state.Ran.Enqueue(ticket);
        return ticket;
    }

    /// <summary>Gives one item, then blocks its thread (ignoring its token) before the next.</summary>
    public async IAsyncEnumerable<int> Drip([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Check(nameof(Drip));
        yield return 1;
        await Task.Yield();
        state.Block();
        yield return 2;
    }

    public void Dispose()
    {
        _disposed = true;
        state.Disposed.Add(context.ReplicaId);
    }

    private void Check(string method)
    {
        if (!_disposed)
            return;
        state.AfterDispose.Enqueue(method);
        throw new ObjectDisposedException(nameof(SlotHog), $"{method} was called on a disposed instance");
    }
}
