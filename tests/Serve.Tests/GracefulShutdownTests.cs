using System.Net;
using System.Runtime.CompilerServices;

namespace Serve.Tests;

/// <summary>A deployment whose methods run until released or cancelled (one ignores its token).</summary>
[Deployment(NumReplicas = 1, MaxOngoingRequests = 8)]
public partial class Lingerer(Probe probe, ReplicaContext context) : IAsyncDisposable
{
    /// <summary>The token the last call saw, and whether it was cancelled when the call ended.</summary>
    public static readonly System.Collections.Concurrent.ConcurrentQueue<string> Seen = new();

    public async Task<string> CallAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await probe.HoldAsync(context.ReplicaId, 0, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Seen.Enqueue($"{context.ReplicaId}: cancelled, stopping={context.StoppingToken.IsCancellationRequested}");
            throw;
        }
    }

    public Task<string> Hold(int ticket, CancellationToken cancellationToken) => probe.HoldAsync(context.ReplicaId, ticket, cancellationToken);

    public async Task<int> Sleep(int milliseconds, CancellationToken cancellationToken)
    {
        await Task.Delay(milliseconds, cancellationToken);
        return milliseconds;
    }

    /// <summary>Ignores cancellation: returns only when the probe is released.</summary>
    public Task<string> Ignore(int ticket) => probe.HoldAsync(context.ReplicaId, ticket, CancellationToken.None);

    public async IAsyncEnumerable<int> Endless([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return 1;
        await probe.HoldAsync(context.ReplicaId, 0, cancellationToken);
        yield return 2;
    }

    [Batch(MaxBatchSize = 2, BatchWaitTimeoutMs = 10)]
    public async Task<IReadOnlyList<int>> Slow(IReadOnlyList<int> inputs, CancellationToken cancellationToken)
    {
        await probe.HoldAsync(context.ReplicaId, inputs[0], cancellationToken);
        return inputs;
    }

    public ValueTask DisposeAsync()
    {
        probe.Disposed.Add(context.ReplicaId);
        return ValueTask.CompletedTask;
    }
}

public class GracefulShutdownTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(200);

    private static Application<LingererHandle> App(Probe probe, string version = "v1") =>
        Lingerer.Bind(probe).WithOptions(o => { o.Version = version; o.GracefulShutdownTimeout = Grace; });

    /// <summary>A host (HTTP off) running one <see cref="Lingerer"/> replica with the short grace period; the test shuts it down.</summary>
    private static async Task<(Probe Probe, ServeHost Serve, LingererHandle Handle, string ReplicaId)> StartAsync()
    {
        var probe = new Probe();
        var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(App(probe)).WaitAsync(Bound);
        return (probe, serve, handle, serve.GetDeployment("Lingerer").Replicas.Single().ReplicaId);
    }

    private static void AssertNamesTheReplica(ReplicaStoppedException e, string replicaId)
    {
        Assert.Equal("Lingerer", e.DeploymentName);
        Assert.Equal(replicaId, e.ReplicaId);
        Assert.Equal(Grace, e.GracefulShutdownTimeout);
        Assert.Contains($"Replica '{replicaId}' of deployment 'Lingerer'", e.Message);
        Assert.Contains("GracefulShutdownTimeout (0.2 s)", e.Message);
        Assert.Contains("raise GracefulShutdownTimeout", e.Message);
        Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
    }

    [Fact]
    public async Task Shutdown_cancels_calls_still_running_after_the_grace_period_and_fails_them_with_a_clear_error()
    {
        var (probe, serve, handle, replicaId) = await StartAsync();
        using var callerToken = new CancellationTokenSource();
        // One call without a token (it gets the replica's abort token as is) and one with its own token (linked).
        var plain = handle.HoldAsync(1).AsTask();
        var withToken = handle.HoldAsync(2, callerToken.Token).AsTask();
        await probe.WaitEnteredAsync(2);

        await serve.ShutdownAsync().WaitAsync(Bound);

        foreach (var call in new[] { plain, withToken })
        {
            var e = await Assert.ThrowsAsync<ReplicaStoppedException>(() => call.WaitAsync(Bound));
            AssertNamesTheReplica(e, replicaId);
        }
        Assert.False(callerToken.IsCancellationRequested);
        // The methods saw their tokens fire and returned before the instance was disposed.
        Assert.Equal(0, probe.Inside);
        Assert.Equal([replicaId], probe.Disposed);
        await serve.DisposeAsync();
    }

    [Fact]
    public async Task A_call_that_finishes_within_the_grace_period_succeeds_and_its_token_never_fires()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(Lingerer.Bind(probe).WithOptions(o => { o.Version = "v1"; o.GracefulShutdownTimeout = Bound; })).WaitAsync(Bound);
        var call = handle.HoldAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);

        var update = serve.RunAsync(Lingerer.Bind(probe).WithOptions(o => { o.Version = "v2"; o.GracefulShutdownTimeout = Bound; }));
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Lingerer").Replicas.Any(r => r.State == ReplicaState.Stopping), "the v1 replica is stopping");
        Assert.False(call.IsCompleted);
        probe.Release();

        Assert.StartsWith("Lingerer", await call.WaitAsync(Bound));
        await update.WaitAsync(Bound);
        Assert.Single(probe.Disposed);
    }

    [Fact]
    public async Task A_rolling_update_cancels_the_old_replicas_overdue_call_while_the_new_version_serves()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(App(probe, "v1")).WaitAsync(Bound);
        var old = serve.GetDeployment("Lingerer").Replicas.Single().ReplicaId;
        var call = handle.CallAsync().AsTask();
        await probe.WaitEnteredAsync(1);

        await serve.RunAsync(App(probe, "v2")).WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<ReplicaStoppedException>(() => call.WaitAsync(Bound));
        AssertNamesTheReplica(e, old);
        Assert.Equal([$"{old}: cancelled, stopping=True"], Lingerer.Seen.Where(s => s.StartsWith(old)));
        await TestUtil.WaitUntilAsync(() => probe.Disposed.Contains(old), "the old replica is disposed");
        var replica = serve.GetDeployment("Lingerer").Replicas.Single();
        Assert.Equal("v2", replica.Version);
        probe.Release();
        Assert.Equal(replica.ReplicaId, await handle.HoldAsync(3).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_method_that_ignores_its_token_does_not_hold_up_disposal_and_its_caller_still_gets_its_result()
    {
        var (probe, serve, handle, replicaId) = await StartAsync();
        var call = handle.IgnoreAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);

        // Grace period, cancel, a bounded wait for the method to notice: then the replica is disposed regardless.
        await serve.ShutdownAsync().WaitAsync(Bound);
        Assert.Equal([replicaId], probe.Disposed);
        Assert.False(call.IsCompleted);

        probe.Release();
        Assert.Equal(replicaId, await call.WaitAsync(Bound));
        await serve.DisposeAsync();
    }

    [Fact]
    public async Task Calls_waiting_for_a_CPU_slot_when_the_replica_stops_fail_with_ReplicaStoppedException_and_never_run_on_the_disposed_instance()
    {
        var state = new SlotHogState();
        var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var hog = await serve.RunAsync(SlotHog.Bind(state).WithOptions(o => { o.NumCpus = 1; o.GracefulShutdownTimeout = Grace; })).WaitAsync(Bound);
        var replicaId = serve.GetDeployment("SlotHog").Replicas.Single().ReplicaId;

        // The only CPU slot is held by a call that blocks its thread and ignores its token, past the replica's disposal.
        var blocker = Task.Factory.StartNew(() => hog.BlockAsync(1).AsTask(), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        await TestUtil.WaitUntilAsync(() => state.Blocked == 1, "the first call holds the only CPU slot");
        using var callerToken = new CancellationTokenSource();
        var waiting = new Task[]
        {
            hog.RecordAsync(2).AsTask(),                                   // no token: the replica's own
            hog.RecordAsync(3, callerToken.Token).AsTask(),                // a caller's token, linked with the replica's
            serve.GetHandle("SlotHog").InvokeAsync("Record", [4]).AsTask(), // untyped
            hog.WithTimeout(Bound).RecordAsync(5).AsTask(),                // a deadline call
        };
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("SlotHog").Replicas[0].OngoingRequests == 5, "the four calls were admitted to the replica");

        await serve.ShutdownAsync().WaitAsync(Bound);

        Assert.Equal([replicaId], state.Disposed);
        foreach (var call in waiting)
        {
            var e = await Assert.ThrowsAsync<ReplicaStoppedException>(() => call.WaitAsync(Bound));
            Assert.Equal("SlotHog", e.DeploymentName);
            Assert.Equal(replicaId, e.ReplicaId);
            Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
        }
        Assert.False(callerToken.IsCancellationRequested);

        // The blocked call returns to its caller after the disposal; nothing waiting behind it runs on the disposed instance.
        state.Open();
        Assert.Equal(1, await blocker.WaitAsync(Bound));
        await serve.DisposeAsync();
        Assert.Empty(state.Ran);
        Assert.Empty(state.AfterDispose);
    }

    [Fact]
    public async Task A_stream_running_past_the_grace_period_ends_with_the_error_after_the_items_it_already_gave()
    {
        var (probe, serve, handle, replicaId) = await StartAsync();
        var items = new List<int>();
        var consume = Task.Run(async () =>
        {
            await foreach (var item in handle.EndlessAsync())
                items.Add(item);
        });
        await probe.WaitEnteredAsync(1);

        await serve.ShutdownAsync().WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<ReplicaStoppedException>(() => consume.WaitAsync(Bound));
        AssertNamesTheReplica(e, replicaId);
        Assert.Equal([1], items);
        await serve.DisposeAsync();
    }

    [Fact]
    public async Task A_running_batch_is_cancelled_and_each_of_its_calls_fails_with_the_error()
    {
        var (probe, serve, handle, replicaId) = await StartAsync();
        var calls = new[] { handle.SlowAsync(1).AsTask(), handle.SlowAsync(2).AsTask() };
        await probe.WaitEnteredAsync(1);

        await serve.ShutdownAsync().WaitAsync(Bound);

        foreach (var call in calls)
        {
            var e = await Assert.ThrowsAsync<ReplicaStoppedException>(() => call.WaitAsync(Bound));
            AssertNamesTheReplica(e, replicaId);
        }
        Assert.Equal(0, probe.Inside);
        await serve.DisposeAsync();
    }

    [Fact]
    public async Task A_zero_grace_period_cancels_running_calls_as_soon_as_the_replica_stops()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(Lingerer.Bind(probe).WithOptions(o => { o.Version = "v1"; o.GracefulShutdownTimeout = TimeSpan.Zero; })).WaitAsync(Bound);
        var call = handle.HoldAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);

        await serve.RunAsync(Lingerer.Bind(probe).WithOptions(o => { o.Version = "v2"; o.GracefulShutdownTimeout = TimeSpan.Zero; })).WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<ReplicaStoppedException>(() => call.WaitAsync(Bound));
        Assert.Equal(TimeSpan.Zero, e.GracefulShutdownTimeout);
        Assert.Contains("GracefulShutdownTimeout (0 s)", e.Message);
    }

    [Fact]
    public async Task Under_load_through_repeated_updates_every_call_either_succeeds_or_fails_with_ReplicaStoppedException()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        Application<LingererHandle> Version(int v) => Lingerer.Bind(probe).WithOptions(o =>
        {
            o.Version = "v" + v;
            o.NumReplicas = 2;
            o.GracefulShutdownTimeout = TimeSpan.FromMilliseconds(50);
        });
        var handle = await serve.RunAsync(Version(0)).WaitAsync(Bound);
        using var stop = new CancellationTokenSource();
        var outcomes = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var callers = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            // Half the callers pass a token of their own (linked with the replica's), half none (the replica's as is).
            using var mine = new CancellationTokenSource();
            var token = c % 2 == 0 ? mine.Token : CancellationToken.None;
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                // Mostly quick calls, and every fourth one longer than the grace period.
                var ms = i % 4 == 3 ? 2_000 : i % 3;
                try
                {
                    Assert.Equal(ms, await handle.SleepAsync(ms, token));
                    outcomes.Enqueue("ok");
                }
                catch (ReplicaStoppedException e)
                {
                    Assert.Equal("Lingerer", e.DeploymentName);
                    outcomes.Enqueue("stopped");
                }
            }
        })).ToArray();

        for (var v = 1; v <= 4; v++)
        {
            await TestUtil.WaitUntilAsync(() => outcomes.Count > 20 * v, "calls are being served");
            await serve.RunAsync(Version(v)).WaitAsync(Bound);
        }
        stop.Cancel();
        // Any exception but ReplicaStoppedException fails its caller's task, and so this test.
        await Task.WhenAll(callers).WaitAsync(Bound);

        Assert.Contains("ok", outcomes);
        Assert.Contains("stopped", outcomes);
        await TestUtil.WaitUntilAsync(() => probe.Disposed.Count == 8, "the 8 replicas of v0-v3 are disposed");
        var deployment = serve.GetDeployment("Lingerer");
        Assert.All(deployment.Replicas, r => Assert.Equal("v4", r.Version));
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Lingerer").Replicas.All(r => r.OngoingRequests == 0), "no replica is busy");
    }

    [Fact]
    public async Task Over_HTTP_a_request_cancelled_by_its_stopping_replica_is_a_503_with_retry_after()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(App(probe, "v1"), new RunOptions { Name = "linger", RoutePrefix = "/linger" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        var request = http.PostAsync("/linger", null);
        await probe.WaitEnteredAsync(1);

        await serve.RunAsync(App(probe, "v2"), new RunOptions { Name = "linger", RoutePrefix = "/linger" }).WaitAsync(Bound);

        using var response = await request.WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("1", response.Headers.RetryAfter?.ToString());
        Assert.Contains("the replica serving this request stopped before it finished", await response.Content.ReadAsStringAsync());
    }
}
