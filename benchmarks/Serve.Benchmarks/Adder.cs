using System.Runtime.CompilerServices;

namespace Serve.Benchmarks;

/// <summary>
/// The deployment every benchmark calls: one method that completes synchronously and one that really awaits
/// (<see cref="Task.Yield"/> always schedules its continuation on the thread pool), so the asynchronous path of
/// each caller is exercised for real.
/// </summary>
[Deployment(MaxOngoingRequests = 64)]
public partial class Adder
{
    /// <summary>The call method; completes synchronously.</summary>
    /// <remarks>
    /// Not inlined, so the direct-call baseline is a real call (~1 ns) rather than a constant folded into the
    /// benchmark loop (0 ns, which leaves BenchmarkDotNet no ratio to compute); the handle pays the same call.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public int Call(int x) => x + 1;

    /// <summary>Yields to the thread pool once, then returns <c>x + 1</c>.</summary>
    public async Task<int> AddAsync(int x)
    {
        await Task.Yield();
        return x + 1;
    }
}
