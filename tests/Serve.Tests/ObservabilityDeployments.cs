using System.Collections.Concurrent;

namespace Serve.Tests.Observability;

[Deployment]
public partial class Scored
{
    public int Call(int x) => x * 2;
    public int Score(int x) => x + 1;
    public int Boom(int x) => throw new InvalidOperationException("boom " + x);
}

[Deployment]
public partial class Ticker
{
    public async IAsyncEnumerable<int> Ticks(int n, bool failAtEnd)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            yield return i;
        }
        if (failAtEnd)
            throw new InvalidOperationException("ticker broke");
    }
}

/// <summary>Holds each call until its key's gate opens; admits one call at a time.</summary>
[Deployment(MaxOngoingRequests = 1)]
public partial class Gated
{
    public static readonly ConcurrentDictionary<string, TaskCompletionSource> Gates = new();
    public static readonly ConcurrentDictionary<string, TaskCompletionSource> Entered = new();

    public static TaskCompletionSource Gate(string key) => Gates.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));

    public static TaskCompletionSource Entry(string key) => Entered.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));

    public async Task<int> HoldAsync(string key)
    {
        Entry(key).TrySetResult();
        await Gate(key).Task.WaitAsync(TimeSpan.FromSeconds(30));
        return 1;
    }
}
