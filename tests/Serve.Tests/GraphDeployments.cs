using System.Collections.Concurrent;

namespace Serve.Tests.Graphs;

// The seed's deployment graph (Ray Serve's InputNode/DAGDriver example): preprocess +1 (the function deployment
// Serve.Tests.Functions.Preprocess), model +increment.
[Deployment]
public partial class Model(int increment)
{
    public int Predict(int inp) => inp + increment;
}

public sealed record Order(int Quantity, int Price);

[Deployment]
public partial class Arithmetic
{
    public int Add(int a, int b) => a + b;
    public Task<int> MultiplyAsync(int a, int b) => Task.FromResult(a * b);
    public string Describe(int value, string unit) => value + " " + unit;
    public int Fail(int value) => throw new InvalidOperationException($"no {value}, sorry");
}

/// <summary>Counts its calls per key, to show that a node used twice is evaluated once per request.</summary>
[Deployment]
public partial class Counter
{
    public static readonly ConcurrentDictionary<string, int> Calls = new();

    public int Count(string key, int value)
    {
        Calls.AddOrUpdate(key, 1, (_, n) => n + 1);
        return value;
    }
}

/// <summary>
/// Two instances meet: each call announces itself and waits for its partner. If the driver ran branches one after
/// the other, the first would wait for a partner that never comes and fail after the bound.
/// </summary>
[Deployment]
public partial class Rendezvous(string me, string partner)
{
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> s_arrived = new();

    private static TaskCompletionSource Arrival(string name) => s_arrived.GetOrAdd(name, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));

    public async Task<int> MeetAsync(int value)
    {
        Arrival(me).TrySetResult();
        await Arrival(partner).Task.WaitAsync(TimeSpan.FromSeconds(20));
        return value;
    }

    /// <summary>The same, blocking its thread: a synchronous deployment.</summary>
    public int MeetBlocking(int value)
    {
        Arrival(me).TrySetResult();
        if (!Arrival(partner).Task.Wait(TimeSpan.FromSeconds(20)))
            throw new TimeoutException($"{me} waited alone for {partner}");
        return value;
    }
}

/// <summary>Holds each call until released; records the token it was given.</summary>
[Deployment(MaxOngoingRequests = 1, MaxQueuedRequests = 0)]
public partial class Slow
{
    public static readonly ConcurrentDictionary<string, TaskCompletionSource> Started = new();
    public static readonly ConcurrentDictionary<string, TaskCompletionSource<bool>> Cancelled = new();

    public async Task<int> HoldAsync(string key, int value, CancellationToken cancellationToken)
    {
        Started.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Cancelled.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(true);
            throw;
        }
        return value;
    }
}

/// <summary>Graph builders for config files (<c>import: Serve.Tests.dll:Serve.Tests.Graphs.GraphApps.Seed</c>).</summary>
public static class GraphApps
{
    public static Application<DagDriverHandle<int, int>> Seed(int increment = 2)
    {
        var input = new InputNode<int>();
        return DagDriver.Bind(Model.Bind(increment).Predict(PreprocessDeployment.Bind(input)));
    }
}
