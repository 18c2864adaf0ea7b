using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Serve.Tests;

[Deployment]
public partial class Greeter(string msg)
{
    public string Call() => msg;
    public Task<string> Shout(string suffix) => Task.FromResult(msg.ToUpperInvariant() + suffix);
}

/// <summary>Lets a test hold calls inside replicas and observe concurrency.</summary>
public sealed class Probe
{
    private TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inside;
    private int _maxInside;
    public ConcurrentDictionary<string, int> PerReplicaMax { get; } = new();
    public ConcurrentDictionary<string, int> PerReplicaNow { get; } = new();
    public ConcurrentQueue<int> Entered { get; } = new();
    public ConcurrentBag<string> Disposed { get; } = new();
    public ConcurrentQueue<string> Configs { get; } = new();
    public ConcurrentBag<string> Constructed { get; } = new();
    public int MaxInside => Volatile.Read(ref _maxInside);
    public int Inside => Volatile.Read(ref _inside);
    public SemaphoreSlim EnteredSignal { get; } = new(0);

    public void Release() => _release.TrySetResult();
    public void Rearm() => _release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<string> HoldAsync(string replicaId, int ticket, CancellationToken cancellationToken)
    {
        var now = Interlocked.Increment(ref _inside);
        InterlockedMax(ref _maxInside, now);
        var mine = PerReplicaNow.AddOrUpdate(replicaId, 1, (_, v) => v + 1);
        PerReplicaMax.AddOrUpdate(replicaId, mine, (_, v) => Math.Max(v, mine));
        Entered.Enqueue(ticket);
        EnteredSignal.Release();
        try
        {
            await _release.Task.WaitAsync(cancellationToken);
            return replicaId;
        }
        finally
        {
            PerReplicaNow.AddOrUpdate(replicaId, 0, (_, v) => v - 1);
            Interlocked.Decrement(ref _inside);
        }
    }

    /// <summary>Waits (bounded) until <paramref name="count"/> more calls have entered a replica.</summary>
    public async Task WaitEnteredAsync(int count)
    {
        for (var i = 0; i < count; i++)
            Assert.True(await EnteredSignal.WaitAsync(TimeSpan.FromSeconds(20)), $"only {i} of {count} calls reached a replica");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }
}

[Deployment(NumReplicas = 2, MaxOngoingRequests = 2)]
public partial class Holder(Probe probe, ReplicaContext context) : IAsyncDisposable
{
    public Task<string> Hold(int ticket, CancellationToken cancellationToken) => probe.HoldAsync(context.ReplicaId, ticket, cancellationToken);

    public string WhoAmI() => context.ReplicaId;

    public string Version() => context.Version;

    public ValueTask DisposeAsync()
    {
        probe.Disposed.Add(context.ReplicaId);
        return ValueTask.CompletedTask;
    }
}

[Deployment]
public partial class ModelA
{
    public int Call(int x) => x * 10;
}

[Deployment]
public partial class ModelB
{
    public ValueTask<int> CallAsync(int x) => ValueTask.FromResult(x + 1);
}

[Deployment]
public partial class Driver(ModelAHandle a, ModelBHandle b)
{
    public async Task<int> CallAsync(int request) => await a.CallAsync(request) + await b.CallAsync(request);
}

[Deployment]
public partial class Pair(ModelAHandle first, ModelAHandle second)
{
    public async Task<int> CallAsync(int x) => await first.CallAsync(x) + await second.CallAsync(x);
}

public sealed record GreetingConfig(string Greeting);

[Deployment(NumReplicas = 2)]
public partial class Configurable(Probe probe, ReplicaContext context) : IReconfigurable<GreetingConfig>
{
    private string _greeting = "unset";

    public string Call(string name) => $"{_greeting}, {name}";

    public string WhoAmI() => context.ReplicaId;

    public ValueTask ReconfigureAsync(GreetingConfig config, CancellationToken cancellationToken)
    {
        _greeting = config.Greeting;
        probe.Configs.Enqueue($"{context.ReplicaId}:{config.Greeting}");
        return ValueTask.CompletedTask;
    }
}

[Deployment]
public partial class Broken
{
    public Broken() => throw new InvalidOperationException("model file weights.bin is missing");

    public int Call() => 1;
}

[Deployment]
public partial class Thrower
{
    public int Call(int x) => x > 0 ? throw new KeyNotFoundException($"no item {x}") : 0;

    public async Task Fail()
    {
        await Task.Yield();
        throw new FormatException("bad format");
    }
}

public interface IClock
{
    string Now();
}

public sealed class FixedClock : IClock
{
    public string Now() => "12:00";
}

[Deployment]
public partial class Injected(string prefix, ReplicaContext context, [FromServices] IClock clock)
{
    public string Call() => $"{prefix} {context.ApplicationName}/{context.DeploymentName} {clock.Now()}";
}

public static partial class Functions
{
    [Deployment]
    public static int Preprocess(int x) => x + 1;
}

[Deployment]
public partial class Streamer
{
    public async IAsyncEnumerable<int> Count(int n, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return i;
        }
    }

    public void Touch(Probe probe) => probe.Constructed.Add("touched");
}

[Deployment]
public partial class Logged([FromServices] ILogger<Logged> logger)
{
    public string Call()
    {
        logger.LogInformation("called");
        return "logged";
    }
}

[Deployment(NumReplicas = 2)]
public partial class Versioned
{
    private readonly string _tag;

    public Versioned(string tag, bool fail)
    {
        if (fail)
            throw new InvalidDataException($"version {tag} cannot load");
        _tag = tag;
    }

    public string Call() => _tag;
}

[Deployment(NumReplicas = 2, MaxOngoingRequests = 1)]
public partial class Yielder(Probe probe, ReplicaContext context)
{
    public async Task<int> Call(int x)
    {
        var now = probe.PerReplicaNow.AddOrUpdate(context.ReplicaId, 1, (_, v) => v + 1);
        probe.PerReplicaMax.AddOrUpdate(context.ReplicaId, now, (_, v) => Math.Max(v, now));
        await Task.Yield();
        probe.PerReplicaNow.AddOrUpdate(context.ReplicaId, 0, (_, v) => v - 1);
        return x;
    }
}
