using System.Collections.Concurrent;

namespace Serve.Tests;

/// <summary>Records the order in which a replica's instance and what it registered are disposed.</summary>
public sealed class DisposalLog
{
    public ConcurrentQueue<string> Events { get; } = new();
}

/// <summary>Registers two resources with its replica, as a library such as Serve.Onnx does.</summary>
[Deployment]
public partial class RegistersResources : IDisposable
{
    private readonly DisposalLog _log;

    public RegistersResources(DisposalLog log, ReplicaContext context)
    {
        _log = log;
        context.RegisterForDispose(new Resource(log, "first"));
        context.RegisterForDispose(new Resource(log, "second"));
    }

    public int Call() => 1;

    public void Dispose() => _log.Events.Enqueue("instance");

    private sealed class Resource(DisposalLog log, string name) : IDisposable
    {
        public void Dispose() => log.Events.Enqueue(name);
    }
}

/// <summary>Registers a resource, then fails its constructor.</summary>
[Deployment]
public partial class RegistersThenFails
{
    public RegistersThenFails(DisposalLog log, ReplicaContext context)
    {
        context.RegisterForDispose(new Marker(log));
        throw new InvalidDataException("weights missing");
    }

    public int Call() => 1;

    private sealed class Marker(DisposalLog log) : IDisposable
    {
        public void Dispose() => log.Events.Enqueue("disposed after failed start");
    }
}

public class RegisterForDisposeTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Registered_resources_are_disposed_when_the_replica_stops_after_the_instance_last_first()
    {
        var log = new DisposalLog();
        var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var handle = await serve.RunAsync(RegistersResources.Bind(log)).WaitAsync(Bound);
        Assert.Equal(1, await handle.CallAsync().AsTask().WaitAsync(Bound));
        Assert.Empty(log.Events);

        await serve.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.Equal(["instance", "second", "first"], log.Events);
    }

    [Fact]
    public async Task Resources_registered_by_a_constructor_that_then_throws_are_disposed()
    {
        var log = new DisposalLog();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);

        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(RegistersThenFails.Bind(log)).WaitAsync(Bound));

        // One replica per attempt (ServeOptions.MaxReplicaStartAttempts, default 3), each one's resource disposed.
        await TestUtil.WaitUntilAsync(() => log.Events.Count == 3, "each failed replica's resource is disposed");
        Assert.All(log.Events, e => Assert.Equal("disposed after failed start", e));
    }
}
