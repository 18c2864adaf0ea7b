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
    public string Call(Microsoft.AspNetCore.Http.HttpRequest request) => request.Path;
}
