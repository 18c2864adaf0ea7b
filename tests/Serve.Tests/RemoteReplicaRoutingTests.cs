using System.Diagnostics;
using System.Runtime.CompilerServices;
using Serve.CodeGeneration;
using Serve.Replicas;
using Serve.Routing;

namespace Serve.Tests;

[Deployment]
public sealed partial class RemoteEcho
{
    public string Echo(string text) => text;

    public void Touch()
    {
    }

    public async IAsyncEnumerable<string> Count(int n, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            yield return i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>
/// A replica "on another node" (or a local one, for locality tests) reached through a fake transport: each call goes
/// through the generated invoker with boxed arguments, as the cluster's remote hop does, and the test scripts what the
/// remote side does: refuse calls (full there), hold them at a gate, or lose them with its node.
/// </summary>
internal sealed class FakeRemoteReplica(string replicaId, string? nodeId, bool isLocal = false) : IReplica
{
    private readonly object _instance = new RemoteEcho();
    private readonly TagList _tags = new();
    private int _ongoing;
    private int _refuseNext;
    private int _calls;
    private int _refused;
    private volatile TaskCompletionSource? _gate;
    private volatile bool _lost;

    public string ReplicaId { get; } = replicaId;
    public string? NodeId { get; } = nodeId;
    public bool IsLocal { get; } = isLocal;
    public int Ongoing => Volatile.Read(ref _ongoing);
    public Serve.Multiplexing.IMultiplexedModels? Models => null;
    public ref readonly TagList MetricTags => ref _tags;
    public CancellationToken AbortToken => CancellationToken.None;

    /// <summary>Calls that ran (not refused).</summary>
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>Calls turned away because the replica was "full on its node".</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Refuses the next <paramref name="count"/> calls (int.MaxValue: every call).</summary>
    public void RefuseNext(int count) => Volatile.Write(ref _refuseNext, count);

    /// <summary>Holds calls until <see cref="Open"/> or <see cref="LoseNode"/>.</summary>
    public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Open() => _gate?.TrySetResult();

    /// <summary>The node died: calls held at the gate and every later call fail with <see cref="ReplicaLostException"/>.</summary>
    public void LoseNode()
    {
        _lost = true;
        _gate?.TrySetException(Lost());
    }

    /// <summary>Completed once <paramref name="count"/> calls have reached the replica's gate.</summary>
    public async Task WaitForCallsAsync(int count)
    {
        while (Volatile.Read(ref _calls) < count)
            await Task.Delay(1);
    }

    private ReplicaLostException Lost() => new("app", "RemoteEcho", ReplicaId, NodeId ?? "?");

    public ReplicaStoppedException StoppedError(Exception? cause) => new("app", "RemoteEcho", ReplicaId, TimeSpan.Zero, cause);

    public bool TryAcquire(int maxOngoing)
    {
        while (true)
        {
            var current = Volatile.Read(ref _ongoing);
            if (current >= maxOngoing)
                return false;
            if (Interlocked.CompareExchange(ref _ongoing, current + 1, current) == current)
                return true;
        }
    }

    public void Release() => Interlocked.Decrement(ref _ongoing);

    // The remote hop: the node is gone, or the replica is full there, or it takes the call (held at the gate if any).
    private async ValueTask AdmitAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        if (_lost)
            throw Lost();
        if (Volatile.Read(ref _refuseNext) > 0)
        {
            Interlocked.Decrement(ref _refuseNext);
            Interlocked.Increment(ref _refused);
            throw new ReplicaRefusedException(ReplicaId);
        }
        Interlocked.Increment(ref _calls);
        if (_gate is { } gate)
            await gate.Task.WaitAsync(cancellationToken);
    }

    private async ValueTask<object?> SendAsync(DeploymentDefinition caller, int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        await AdmitAsync(cancellationToken);
        return await caller.Invoker.InvokeAsync(_instance, methodId, arguments, cancellationToken);
    }

    public async ValueTask<TResult> InvokeAsync<TArgs, TResult>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult> =>
        (TResult)(await SendAsync(caller, arguments.MethodId, arguments.GetArguments(), cancellationToken))!;

    public async ValueTask InvokeVoidAsync<TArgs>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation =>
        await SendAsync(caller, arguments.MethodId, arguments.GetArguments(), cancellationToken);

    public ValueTask<object?> InvokeBoxedAsync(DeploymentDefinition caller, int methodId, object?[] arguments, bool offCaller, CancellationToken cancellationToken) =>
        SendAsync(caller, methodId, arguments, cancellationToken);

    public async ValueTask<IAsyncEnumerable<TItem>> InvokeStreamAsync<TArgs, TItem>(DeploymentDefinition caller, TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IStreamInvocation<TItem>
    {
        await AdmitAsync(cancellationToken);
        return Items(arguments.Invoke(_instance, cancellationToken));
    }

    public async ValueTask<IAsyncEnumerable<object?>> InvokeBoxedStreamAsync(DeploymentDefinition caller, int methodId, object?[] arguments, CancellationToken cancellationToken) =>
        (IAsyncEnumerable<object?>)(await SendAsync(caller, methodId, arguments, cancellationToken))!;

    // Items of a started stream; after the first item, a lost node fails the stream where it stands.
    private async IAsyncEnumerable<TItem> Items<TItem>(IAsyncEnumerable<TItem> items)
    {
        var first = true;
        await foreach (var item in items)
        {
            if (!first && _lost)
                throw Lost();
            first = false;
            yield return item;
        }
    }
}

public class RemoteReplicaRoutingTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static (RemoteEchoHandle Handle, DeploymentRouter Router) Deployment(int maxOngoing, params IReplica[] replicas)
    {
        var definition = RemoteEcho.Bind().Definition;
        var endpoint = new DeploymentEndpoint("app", "RemoteEcho", definition, new DeploymentOptions { MaxOngoingRequests = maxOngoing });
        endpoint.Router.SetReplicas(replicas);
        return ((RemoteEchoHandle)definition.CreateHandle(new HandleTarget(endpoint)), endpoint.Router);
    }

    [Fact]
    public void Router_takes_local_replicas_first_and_a_remote_one_only_when_no_local_one_has_room()
    {
        var remoteA = new FakeRemoteReplica("r-a", "node-b");
        var local = new FakeRemoteReplica("l", "node-a", isLocal: true);
        var remoteB = new FakeRemoteReplica("r-b", "node-c");
        var (_, router) = Deployment(2, remoteA, local, remoteB);

        for (var i = 0; i < 2; i++)
        {
            Assert.True(router.TryAcquire(out var picked));
            Assert.Same(local, picked);
        }
        Assert.True(router.TryAcquire(out var third));
        Assert.False(third.IsLocal);
        router.Release(local);
        Assert.True(router.TryAcquire(out var again));
        Assert.Same(local, again);
    }

    [Fact]
    public async Task A_call_refused_by_a_full_remote_replica_runs_elsewhere_and_the_caller_never_sees_the_refusal()
    {
        var refusing = new FakeRemoteReplica("r-full", "node-b");
        var other = new FakeRemoteReplica("r-free", "node-c");
        refusing.RefuseNext(3);
        var (handle, router) = Deployment(4, refusing, other);

        for (var i = 0; i < 20; i++)
            Assert.Equal("hi" + i, await handle.EchoAsync("hi" + i).AsTask().WaitAsync(Wait));

        Assert.Equal(3, refusing.Refused);
        Assert.Equal(20, refusing.Calls + other.Calls);
        Assert.All(router.Replicas, r => Assert.Equal(0, r.Ongoing));
    }

    [Fact]
    public async Task A_lone_remote_replica_that_refuses_twice_serves_the_third_try()
    {
        var remote = new FakeRemoteReplica("r", "node-b");
        remote.RefuseNext(2);
        var (handle, _) = Deployment(1, remote);

        Assert.Equal("x", await handle.EchoAsync("x").AsTask().WaitAsync(Wait));
        await handle.TouchAsync().AsTask().WaitAsync(Wait);

        Assert.Equal(2, remote.Refused);
        Assert.Equal(2, remote.Calls);
        Assert.Equal(0, remote.Ongoing);
    }

    [Fact]
    public async Task Refusals_are_bounded_a_call_every_replica_keeps_refusing_fails_with_BackPressureException()
    {
        var remote = new FakeRemoteReplica("r", "node-b");
        remote.RefuseNext(int.MaxValue);
        var (handle, _) = Deployment(1, remote);

        var e = await Assert.ThrowsAsync<BackPressureException>(() => handle.EchoAsync("x").AsTask().WaitAsync(Wait));

        Assert.Contains("RemoteEcho", e.Message);
        Assert.Contains($"refused this call {DeploymentHandle.MaxRefusals} times", e.Message);
        Assert.Equal(DeploymentHandle.MaxRefusals, remote.Refused);
        Assert.Equal(0, remote.Calls);
        Assert.Equal(0, remote.Ongoing);
    }

    [Fact]
    public async Task A_call_in_flight_on_a_node_that_dies_is_retried_once_on_a_survivor_and_the_node_leaves_the_router()
    {
        var doomed = new FakeRemoteReplica("r-doomed", "node-b");
        var survivor = new FakeRemoteReplica("r-survivor", "node-c");
        var (handle, router) = Deployment(1, doomed);
        doomed.Hold();
        var call = handle.EchoAsync("kept").AsTask();
        await doomed.WaitForCallsAsync(1).WaitAsync(Wait);
        router.SetReplicas([doomed, survivor]);

        doomed.LoseNode();

        Assert.Equal("kept", await call.WaitAsync(Wait));
        Assert.Equal(1, survivor.Calls);
        Assert.DoesNotContain(router.Replicas, r => r.NodeId == "node-b");
        Assert.Equal(0, doomed.Ongoing);
    }

    [Fact]
    public async Task With_RetryOnNodeFailure_off_the_caller_gets_ReplicaLostException_naming_deployment_replica_and_node()
    {
        var doomed = new FakeRemoteReplica("r-doomed", "node-b");
        var survivor = new FakeRemoteReplica("r-survivor", "node-c");
        var (handle, router) = Deployment(1, doomed);
        router.RetryOnNodeFailure = false;
        doomed.Hold();
        var call = handle.EchoAsync("lost").AsTask();
        await doomed.WaitForCallsAsync(1).WaitAsync(Wait);
        router.SetReplicas([doomed, survivor]);

        doomed.LoseNode();

        var e = await Assert.ThrowsAsync<ReplicaLostException>(() => call.WaitAsync(Wait));
        Assert.Contains("'RemoteEcho'", e.Message);
        Assert.Contains("'r-doomed'", e.Message);
        Assert.Contains("'node-b'", e.Message);
        Assert.Contains("RetryOnNodeFailure", e.Message);
        Assert.Equal(0, survivor.Calls);
        Assert.DoesNotContain(router.Replicas, r => r.NodeId == "node-b");
    }

    [Fact]
    public async Task A_call_lost_twice_is_not_retried_a_second_time()
    {
        var first = new FakeRemoteReplica("r-1", "node-b");
        var second = new FakeRemoteReplica("r-2", "node-c");
        var (handle, router) = Deployment(1, first);
        first.Hold();
        second.Hold();
        var call = handle.EchoAsync("x").AsTask();
        await first.WaitForCallsAsync(1).WaitAsync(Wait);
        router.SetReplicas([first, second]);
        first.LoseNode();
        await second.WaitForCallsAsync(1).WaitAsync(Wait);

        second.LoseNode();

        var e = await Assert.ThrowsAsync<ReplicaLostException>(() => call.WaitAsync(Wait));
        Assert.Equal("node-c", e.NodeId);
        Assert.Empty(router.Replicas);
    }

    [Fact]
    public async Task When_a_node_dies_its_in_flight_and_queued_calls_complete_on_the_survivors()
    {
        var survivor = new FakeRemoteReplica("l", "node-a", isLocal: true);
        var doomed = new FakeRemoteReplica("r", "node-b");
        survivor.Hold();
        doomed.Hold();
        var (handle, router) = Deployment(1, survivor, doomed);
        var onSurvivor = handle.EchoAsync("one").AsTask();
        await survivor.WaitForCallsAsync(1).WaitAsync(Wait);
        var onDoomed = handle.EchoAsync("two").AsTask();
        await doomed.WaitForCallsAsync(1).WaitAsync(Wait);
        var queued = handle.EchoAsync("three").AsTask();
        while (router.QueuedCount == 0)
            await Task.Delay(1).WaitAsync(Wait);

        Assert.Equal(1, router.DropNode("node-b"));
        doomed.LoseNode();
        survivor.Open();

        Assert.Equal(["one", "two", "three"], await Task.WhenAll(onSurvivor, onDoomed, queued).WaitAsync(Wait));
        Assert.Equal(3, survivor.Calls);
        Assert.Equal(0, router.QueuedCount);
        Assert.Same(survivor, Assert.Single(router.Replicas));
    }

    [Fact]
    public async Task A_retry_after_a_lost_node_stays_within_the_handle_timeout()
    {
        var doomed = new FakeRemoteReplica("r-doomed", "node-b");
        var (handle, _) = Deployment(1, doomed);
        doomed.Hold();
        var call = handle.WithTimeout(TimeSpan.FromMilliseconds(300)).EchoAsync("x").AsTask();
        await doomed.WaitForCallsAsync(1).WaitAsync(Wait);

        // No survivor: the retry waits in the queue until the handle's deadline, then times out like any call.
        doomed.LoseNode();

        var e = await Assert.ThrowsAsync<TimeoutException>(() => call.WaitAsync(Wait));
        Assert.Contains("RemoteEcho", e.Message);
    }

    [Fact]
    public async Task A_stream_refused_at_start_is_started_elsewhere()
    {
        var remote = new FakeRemoteReplica("r", "node-b");
        remote.RefuseNext(2);
        var (handle, _) = Deployment(1, remote);

        var items = new List<string>();
        await foreach (var item in handle.CountAsync(3).WithCancellation(default))
            items.Add(item);

        Assert.Equal(["0", "1", "2"], items);
        Assert.Equal(2, remote.Refused);
        Assert.Equal(0, remote.Ongoing);
    }

    [Fact]
    public async Task A_stream_that_already_yielded_items_is_not_retried_when_its_node_dies()
    {
        var doomed = new FakeRemoteReplica("r-doomed", "node-b");
        var survivor = new FakeRemoteReplica("r-survivor", "node-c");
        var (handle, router) = Deployment(1, doomed);
        var items = new List<string>();

        var e = await Assert.ThrowsAsync<ReplicaLostException>(async () =>
        {
            await foreach (var item in handle.CountAsync(5).WithCancellation(default))
            {
                items.Add(item);
                if (items.Count == 1)
                {
                    router.SetReplicas([doomed, survivor]);
                    doomed.LoseNode();
                }
            }
        }).WaitAsync(Wait);

        Assert.Equal(["0"], items);
        Assert.Equal("node-b", e.NodeId);
        Assert.Equal(0, survivor.Calls);
    }

    [Fact]
    public async Task Untyped_calls_are_retried_the_same_way()
    {
        var doomed = new FakeRemoteReplica("r-doomed", "node-b");
        var survivor = new FakeRemoteReplica("r-survivor", "node-c");
        doomed.RefuseNext(1);
        var (handle, router) = Deployment(1, doomed);
        router.SetReplicas([doomed]);
        doomed.Hold();
        var call = handle.InvokeAsync("Echo", ["boxed"]).AsTask();
        await doomed.WaitForCallsAsync(1).WaitAsync(Wait);
        router.SetReplicas([doomed, survivor]);

        doomed.LoseNode();

        Assert.Equal("boxed", await call.WaitAsync(Wait));
        Assert.Equal(1, doomed.Refused);
        Assert.Equal(1, survivor.Calls);
    }

    [Fact]
    public void Remote_replicas_from_the_cluster_survive_the_controller_replacing_its_local_set()
    {
        var local = new FakeRemoteReplica("l1", null, isLocal: true);
        var newLocal = new FakeRemoteReplica("l2", null, isLocal: true);
        var remote = new FakeRemoteReplica("r", "node-b");
        var (_, router) = Deployment(1, local);

        router.SetRemoteReplicas([remote]);
        router.SetReplicas([newLocal]);

        Assert.Equal([newLocal, remote], router.Replicas);
        Assert.Equal(1, router.DropNode("node-b"));
        Assert.Equal([newLocal], router.Replicas);
        Assert.Equal(0, router.DropNode("node-b"));
    }

    [Fact]
    public void A_lost_call_over_HTTP_is_a_503_with_Retry_After()
    {
        var errors = new Http.HttpErrorMapper(TimeSpan.FromSeconds(30), maxRequestBodySize: 1024);
        var answer = errors.CallFailed(new ReplicaLostException("app", "Model", "Model#1", "node-b"), "r1", cancelled: false, timedOut: false)!.Value;

        Assert.Equal(503, answer.StatusCode);
        Assert.Equal("1", answer.RetryAfter);
        Assert.Contains("node serving this request failed", answer.Body);
        Assert.Contains("r1", answer.Body);
    }

    [Fact]
    public void RetryOnNodeFailure_is_on_by_default_and_set_by_attribute_options_and_config()
    {
        Assert.True(new DeploymentOptions().RetryOnNodeFailure);
        Assert.True(RemoteEcho.Bind().GetOptions().RetryOnNodeFailure);
        Assert.False(NotIdempotent.Bind().GetOptions().RetryOnNodeFailure);
        Assert.False(RemoteEcho.Bind().WithOptions(o => o.RetryOnNodeFailure = false).GetOptions().Clone().RetryOnNodeFailure);
    }

    [Fact]
    public void A_config_file_sets_retry_on_node_failure_and_rejects_a_non_boolean()
    {
        var dir = Directory.CreateTempSubdirectory("serve-retry-config-").FullName;
        var import = typeof(RemoteEchoApps).Assembly.Location.Replace('\\', '/') + ":Serve.Tests.RemoteEchoApps.Echo";
        var path = Path.Combine(dir, "serve.yaml");
        File.WriteAllText(path, $"""
            applications:
              - import: {import}
                deployments:
                  - name: RemoteEcho
                    retry_on_node_failure: false
            """);
        Assert.False(Config.ServeConfigLoader.Load(path).Applications[0].Application.GetOptions().RetryOnNodeFailure);

        File.WriteAllText(path, $"""
            applications:
              - import: {import}
                deployments:
                  - name: RemoteEcho
                    retry_on_node_failure: sometimes
            """);
        var e = Assert.Throws<Config.ServeConfigException>(() => Config.ServeConfigLoader.Load(path));
        Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].retry_on_node_failure" && x.Reason.StartsWith("expected true or false"));
        Directory.Delete(dir, recursive: true);
    }
}

public static class RemoteEchoApps
{
    public static Application<RemoteEchoHandle> Echo() => RemoteEcho.Bind();
}

[Deployment(RetryOnNodeFailure = false)]
public sealed partial class NotIdempotent
{
    public int Charge(int cents) => cents;
}

/// <summary>Runs alone: a metrics listener of a test running in parallel could allocate on this test's thread.</summary>
[CollectionDefinition(nameof(LocalFastPathAllocationTests), DisableParallelization = true)]
public sealed class LocalFastPathAllocationCollection;

[Collection(nameof(LocalFastPathAllocationTests))]
public class LocalFastPathAllocationTests
{
    // The method is synchronous and the replica free, so every call completes inline (the fast path).
    private static void CallInline(RemoteEchoHandle handle, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var pending = handle.EchoAsync("x");
            Assert.True(pending.IsCompletedSuccessfully);
            Assert.Equal("x", pending.Result);
        }
    }

    [Fact]
    public async Task A_typed_call_to_a_free_local_replica_still_allocates_nothing()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(RemoteEcho.Bind());
        // Warm up (tiered JIT, first-call caches), then count this thread's allocations over many calls.
        CallInline(handle, 10_000);

        var before = GC.GetAllocatedBytesForCurrentThread();
        CallInline(handle, 1_000);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }
}
