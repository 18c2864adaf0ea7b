using System.Runtime.CompilerServices;

namespace Serve.Tests;

// Deployments served over HTTP by HttpIngressTests.

[Deployment]
public partial class HttpHello(string msg)
{
    public string Call() => msg;
}

[Deployment]
public partial class HttpEcho
{
    public string Call(string name) => $"hello {name}";
}

public sealed record SumResult(int A, int B, int Sum);

[Deployment]
public partial class HttpAdder
{
    public SumResult Call(int a, int b) => new(a, b, a + b);
}

[Deployment]
public partial class HttpFaulty
{
    public int Call(int x) => x > 0 ? throw new InvalidOperationException("secret connection string db=prod;pwd=hunter2") : x;
}

[Deployment]
public partial class HttpBytes
{
    public byte[] Call(int n) => Enumerable.Range(0, n).Select(i => (byte)i).ToArray();
}

[Deployment]
public partial class HttpSink(Probe probe)
{
    public Task CallAsync(string item)
    {
        probe.Configs.Enqueue(item);
        return Task.CompletedTask;
    }
}

[Deployment(MaxOngoingRequests = 1, MaxQueuedRequests = 0)]
public partial class HttpGate(Probe probe, ReplicaContext context)
{
    public Task<string> Call(int ticket, CancellationToken cancellationToken) => probe.HoldAsync(context.ReplicaId, ticket, cancellationToken);
}

[Deployment]
public partial class HttpRaw
{
    public async Task<Microsoft.AspNetCore.Http.IResult> CallAsync(Microsoft.AspNetCore.Http.HttpRequest request)
    {
        using var reader = new StreamReader(request.Body);
        var body = await reader.ReadToEndAsync();
        var who = request.Query["who"].ToString();
        return who.Length == 0
            ? Microsoft.AspNetCore.Http.Results.BadRequest("say who")
            : Microsoft.AspNetCore.Http.Results.Text($"{request.Method} {request.Path} who={who} body={body}", "text/plain", statusCode: 201);
    }
}

[Deployment]
public partial class HttpMixed
{
    public string Call(Microsoft.AspNetCore.Http.HttpRequest request, int n) => $"{request.Path} {n}";
}

// Deployments streamed over HTTP by HttpStreamingTests.

public sealed record Tick(int Index, string Label);

public sealed class StreamProbe
{
    /// <summary>Released by the test once it has read the first item.</summary>
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when the producer saw its CancellationToken fire.</summary>
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when the producer has yielded its first item.</summary>
    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

[Deployment]
public partial class HttpTicker
{
    public async IAsyncEnumerable<Tick> Call(int n, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return new Tick(i, $"item {i}");
        }
    }
}

[Deployment]
public partial class HttpStepper(StreamProbe probe)
{
    public async IAsyncEnumerable<string> Call([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        yield return "first";
        await probe.Gate.Task.WaitAsync(cancellationToken);
        yield return "second";
    }
}

[Deployment]
public partial class HttpEndless(StreamProbe probe)
{
    public async IAsyncEnumerable<int> Call([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(() => probe.Cancelled.TrySetResult());
        var i = 0;
        while (true)
        {
            yield return i++;
            probe.Started.TrySetResult();
            await Task.Delay(20, cancellationToken);
        }
    }
}

[Deployment]
public partial class HttpStreamFaulty
{
    private static bool Fail => true;

    public async IAsyncEnumerable<int> Call()
    {
        await Task.Yield();
        if (Fail)
            throw new InvalidOperationException("secret connection string db=prod;pwd=hunter2");
        yield return 1;
    }
}

[Deployment]
public partial class HttpStreamBreaks
{
    private static bool Fail => true;

    public async IAsyncEnumerable<int> Call()
    {
        yield return 1;
        await Task.Yield();
        if (Fail)
            throw new InvalidOperationException("secret connection string db=prod;pwd=hunter2");
        yield return 2;
    }
}

public sealed class BlockerProbe : IDisposable
{
    public ManualResetEventSlim Gate { get; } = new();
    public volatile bool Returned;

    public void Dispose() => Gate.Dispose();
}

/// <summary>Blocks its thread (ignoring its token) until the test opens the gate, at most 10 s.</summary>
[Deployment]
public partial class HttpBlocker(BlockerProbe probe)
{
    public string Call(int x)
    {
        probe.Gate.Wait(TimeSpan.FromSeconds(10));
        probe.Returned = true;
        return "done " + x;
    }
}
