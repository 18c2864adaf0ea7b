using System.Runtime.CompilerServices;

namespace Serve.Tests;

/// <summary>Counts live replica instances (constructed, not yet disposed) to check the pool is never exceeded.</summary>
public sealed class LiveCounter
{
    private int _live;
    private int _maxLive;
    public int Live => Volatile.Read(ref _live);
    public int MaxLive => Volatile.Read(ref _maxLive);

    public void Up()
    {
        var now = Interlocked.Increment(ref _live);
        int seen;
        while (now > (seen = Volatile.Read(ref _maxLive)) && Interlocked.CompareExchange(ref _maxLive, now, seen) != seen) { }
    }

    public void Down() => Interlocked.Decrement(ref _live);
}

[Deployment]
public partial class GpuWorker(ReplicaContext context)
{
    public string Call() => context.Gpu is { } gpu
        ? $"{context.ReplicaId} gpu{gpu.Ordinal} x{gpu.Fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)} budget={gpu.MemoryBudgetBytes} physical={gpu.IsPhysical}"
        : $"{context.ReplicaId} no gpu";

    public int[] Ordinals() => context.Gpu is { } gpu ? [.. gpu.Ordinals] : [];

    public int CpuThreads() => context.CpuThreads;
}

[Deployment]
public partial class Counted : IDisposable
{
    private readonly LiveCounter _counter;
    private readonly ReplicaContext _context;

    public Counted(LiveCounter counter, ReplicaContext context)
    {
        _counter = counter;
        _context = context;
        counter.Up();
    }

    public string Call() => _context.Version;

    public void Dispose() => _counter.Down();
}

/// <summary>Holds calls inside a synchronous (thread-blocking) method, the way CPU-bound work holds a thread.</summary>
public sealed class CpuGate
{
    private readonly ManualResetEventSlim _open = new();
    private int _inside;
    private int _peak;
    public int Inside => Volatile.Read(ref _inside);
    public int Peak => Volatile.Read(ref _peak);
    public void Open() => _open.Set();

    public int Enter(int x)
    {
        var now = Interlocked.Increment(ref _inside);
        int seen;
        while (now > (seen = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, seen) != seen) { }
        try
        {
            // Bounded: a broken limiter fails the test instead of hanging it.
            if (!_open.Wait(TimeSpan.FromSeconds(30)))
                throw new TimeoutException("the test never opened the gate");
            return x * 2;
        }
        finally
        {
            Interlocked.Decrement(ref _inside);
        }
    }
}

[Deployment(MaxOngoingRequests = 16)]
public partial class CpuBound(CpuGate gate, ReplicaContext context)
{
    public int Call(int x) => gate.Enter(x);

    public async Task<int> Twice(int x)
    {
        var first = gate.Enter(x);
        await Task.Yield();
        return first + x;
    }

    public void Fail() => throw new InvalidOperationException($"boom in {context.ReplicaId}");

    public int Threads() => context.CpuThreads;

    /// <summary>Whether user code sees the default task scheduler (true inline and, by design, after waiting for a CPU slot).</summary>
    public bool SeesDefaultScheduler() => TaskScheduler.Current == TaskScheduler.Default;
}

/// <summary>
/// CPU-bound work whose shared state is BCL types only, so it crosses into an isolated load context by reference
/// (a test type like <see cref="CpuGate"/> would be a different type in there).
/// </summary>
[Deployment(MaxOngoingRequests = 16)]
public partial class IsoCpuBound(ManualResetEventSlim gate, StrongBox<int> inside, StrongBox<int> peak)
{
    public int Call(int x)
    {
        var now = Interlocked.Increment(ref inside.Value);
        int seen;
        while (now > (seen = Volatile.Read(ref peak.Value)) && Interlocked.CompareExchange(ref peak.Value, now, seen) != seen) { }
        try
        {
            if (!gate.Wait(TimeSpan.FromSeconds(30)))
                throw new TimeoutException("the test never opened the gate");
            return x * 2;
        }
        finally
        {
            Interlocked.Decrement(ref inside.Value);
        }
    }
}

/// <summary>A GPU runtime without CUDA: reports devices and records what it opened, so the host's side of the seam can be checked.</summary>
public sealed class FakeGpuRuntime(params GpuDevice[] devices) : IGpuRuntime
{
    public System.Collections.Concurrent.ConcurrentQueue<FakeReplicaGpu> Opened { get; } = new();
    public bool ThrowOnDiscover { get; init; }

    public IReadOnlyList<GpuDevice> DiscoverDevices() =>
        ThrowOnDiscover ? throw new InvalidOperationException("driver exploded") : devices;

    public ReplicaGpu Open(GpuAssignment assignment)
    {
        var gpu = new FakeReplicaGpu(assignment);
        Opened.Enqueue(gpu);
        return gpu;
    }
}

public sealed class FakeReplicaGpu(GpuAssignment assignment) : ReplicaGpu(assignment)
{
    public bool Disposed { get; private set; }
    public override bool IsPhysical => true;
    protected override void Dispose(bool disposing) => Disposed = true;
}
