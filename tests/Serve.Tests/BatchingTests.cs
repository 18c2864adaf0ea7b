using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Serve.Tests;

public class BatchingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static async Task<(ServeHost Serve, DoublerHandle Handle)> StartAsync(BatchProbe probe, Action<DeploymentOptions>? options = null)
    {
        var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var app = Doubler.Bind(probe).WithOptions(o =>
        {
            o.UserConfig = new BatchConfig(4);
            options?.Invoke(o);
        });
        return (serve, await serve.RunAsync(app).WaitAsync(Bound));
    }

    [Fact]
    public async Task Deploying_a_batch_method_whose_MaxBatchSize_exceeds_MaxOngoingRequests_logs_a_warning_naming_both()
    {
        var logs = new CapturingLoggerProvider();
        var services = new ServiceCollection()
            .AddLogging(b => b.AddProvider(logs)).BuildServiceProvider();
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.Services = services; });

        // Doubler's batch methods: Double (MaxBatchSize 4), Short and Fail (3), Quick (1000).
        await serve.RunAsync(Doubler.Bind(new BatchProbe()).WithOptions(o => { o.MaxOngoingRequests = 3; o.UserConfig = new BatchConfig(4); })).WaitAsync(Bound);

        var warnings = logs.Lines.Select(l => l.Message).Where(m => m.Contains("never fill")).ToArray();
        Assert.Equal(2, warnings.Length);
        Assert.Contains("Deployment 'Doubler' of application 'default': [Batch] method Double has MaxBatchSize = 4, but a replica takes at most " +
            "MaxOngoingRequests = 3 calls, so its batches never fill and each waits its whole BatchWaitTimeout. Set MaxOngoingRequests to at least 4.", warnings);
        Assert.Single(warnings, w => w.Contains("method Quick has MaxBatchSize = 1000"));
    }

    [Fact]
    public async Task Concurrent_calls_are_grouped_into_batches_and_each_caller_gets_its_own_result()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe);
        await using var _ = serve;

        var calls = Enumerable.Range(1, 8).Select(i => doubler.DoubleAsync(i).AsTask()).ToArray();
        var results = await Task.WhenAll(calls).WaitAsync(Bound);

        Assert.Equal(Enumerable.Range(1, 8).Select(i => i * 2), results);
        // The wait is a minute, so only full batches ran: two of MaxBatchSize = 4, holding all eight inputs once.
        Assert.Equal([4, 4], probe.Batches.Select(b => b.Length));
        Assert.Equal(Enumerable.Range(1, 8), probe.Batches.SelectMany(b => b).Order());
    }

    [Fact]
    public async Task A_batch_closes_when_its_oldest_call_has_waited_BatchWaitTimeoutMs()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe);
        await using var _ = serve;

        // Quick: MaxBatchSize = 1000, BatchWaitTimeoutMs = 5. Three calls never fill a batch; the wait closes it.
        var results = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => doubler.QuickAsync(i).AsTask())).WaitAsync(Bound);

        Assert.Equal([1, 2, 3], results);
        Assert.Equal(3, probe.Batches.Sum(b => b.Length));
        Assert.All(probe.Batches, b => Assert.InRange(b.Length, 1, 3));
    }

    [Fact]
    public async Task MaxConcurrentBatches_bounds_the_batches_running_on_a_replica_and_can_be_raised_at_run_time()
    {
        var probe = new BatchProbe { Holding = true };
        var (serve, doubler) = await StartAsync(probe, o => o.UserConfig = new BatchConfig(2));
        await using var _ = serve;

        var calls = Enumerable.Range(1, 4).Select(i => doubler.DoubleAsync(i).AsTask()).ToArray();
        await probe.WaitBatchesAsync(1);
        // Two full batches of 2; MaxConcurrentBatches = 1, so the second waits with its 2 calls.
        await TestUtil.WaitUntilAsync(() => doubler.StatsAsync().AsTask().Result == "1/2/2/1", "the second batch waits behind the first");
        Assert.Single(probe.Batches);

        await doubler.SetConcurrencyAsync(2);
        await probe.WaitBatchesAsync(1);
        Assert.Equal("2/0/2/2", await doubler.StatsAsync());

        probe.Open();
        Assert.Equal(new[] { 2, 4, 6, 8 }, await Task.WhenAll(calls).WaitAsync(Bound));
    }

    [Fact]
    public async Task A_wrong_result_count_fails_every_call_of_the_batch_naming_the_method_and_both_counts()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe);
        await using var _ = serve;

        var calls = Enumerable.Range(1, 3).Select(i => doubler.ShortAsync(i).AsTask()).ToArray();

        foreach (var call in calls)
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => call.WaitAsync(Bound));
            Assert.Contains("'Doubler.Short'", error.Message);
            Assert.Contains("returned 2 result(s) for a batch of 3 call(s)", error.Message);
        }
        // The replica serves on.
        Assert.Equal(7, await doubler.QuickAsync(7).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task An_exception_in_the_batch_method_fails_every_call_of_the_batch()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe);
        await using var _ = serve;

        var calls = Enumerable.Range(1, 3).Select(i => doubler.FailAsync(i).AsTask()).ToArray();

        foreach (var call in calls)
        {
            var error = await Assert.ThrowsAsync<InvalidDataException>(() => call.WaitAsync(Bound));
            Assert.Equal("bad batch of 3", error.Message);
        }
    }

    [Fact]
    public async Task A_cancelled_call_leaves_its_batch_before_the_batch_starts()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe, o => o.UserConfig = new BatchConfig(3));
        await using var _ = serve;

        using var cancel = new CancellationTokenSource();
        var cancelled = doubler.DoubleAsync(100, cancel.Token).AsTask();
        var kept = doubler.DoubleAsync(1).AsTask();
        await TestUtil.WaitUntilAsync(() => doubler.StatsAsync().AsTask().Result == "0/2/3/1", "two calls wait in the open batch");

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bound));
        Assert.Equal("0/1/3/1", await doubler.StatsAsync());

        var more = new[] { doubler.DoubleAsync(2).AsTask(), doubler.DoubleAsync(3).AsTask() };
        Assert.Equal(new[] { 2, 4, 6 }, await Task.WhenAll(more.Prepend(kept)).WaitAsync(Bound));
        var batch = Assert.Single(probe.Batches);
        Assert.Equal([1, 2, 3], batch.Order());
    }

    [Fact]
    public async Task When_every_caller_of_a_running_batch_gives_up_the_batch_token_is_cancelled_and_the_slots_are_freed()
    {
        var probe = new BatchProbe { Holding = true };
        var (serve, doubler) = await StartAsync(probe, o => o.UserConfig = new BatchConfig(2));
        await using var _ = serve;

        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        var calls = new[] { doubler.DoubleAsync(1, first.Token).AsTask(), doubler.DoubleAsync(2, second.Token).AsTask() };
        await probe.WaitBatchesAsync(1);

        first.Cancel();
        Assert.Empty(probe.TokenCancelled); // one caller is still waiting for the batch
        second.Cancel();

        foreach (var call in calls)
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound));
        Assert.Single(probe.TokenCancelled);
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Doubler").Replicas.All(r => r.OngoingRequests == 0), "no slot stays taken");
    }

    [Fact]
    public async Task Batch_settings_change_at_run_time_through_UserConfig_without_a_restart()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe, o => { o.Version = "v1"; o.UserConfig = new BatchConfig(2); });
        await using var _ = serve;
        var replica = Assert.Single(serve.GetDeployment("Doubler").Replicas).ReplicaId;

        await Task.WhenAll(Enumerable.Range(1, 4).Select(i => doubler.DoubleAsync(i).AsTask())).WaitAsync(Bound);
        Assert.Equal([2, 2], probe.Batches.Select(b => b.Length));

        await serve.RunAsync(Doubler.Bind(probe).WithOptions(o => { o.Version = "v1"; o.UserConfig = new BatchConfig(4); })).WaitAsync(Bound);
        Assert.Equal(replica, Assert.Single(serve.GetDeployment("Doubler").Replicas).ReplicaId);
        Assert.Equal("0/0/4/1", await doubler.StatsAsync());

        await Task.WhenAll(Enumerable.Range(1, 4).Select(i => doubler.DoubleAsync(i).AsTask())).WaitAsync(Bound);
        Assert.Equal([2, 2, 4], probe.Batches.Select(b => b.Length));
    }

    [Fact]
    public async Task Untyped_calls_join_the_same_batches_as_typed_calls()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe, o => o.UserConfig = new BatchConfig(2));
        await using var _ = serve;

        var untyped = serve.GetHandle("Doubler").InvokeAsync("Double", [21]).AsTask();
        var typed = doubler.DoubleAsync(5).AsTask();

        Assert.Equal(42, await untyped.WaitAsync(Bound));
        Assert.Equal(10, await typed.WaitAsync(Bound));
        Assert.Equal([5, 21], Assert.Single(probe.Batches).Order());
        Assert.Equal(typeof(int), Assert.Single(doubler.Definition.Methods, m => m.Name == "Double").ParameterTypes.Single());
    }

    [Fact]
    public void Out_of_range_settings_at_run_time_fail_with_the_method_and_value()
    {
        var queue = new Batching.BatchQueue<int, int>("Model.Predict", 4, 10, 1, static (_, items, _) => new(items));

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => queue.MaxBatchSize = 0);
        Assert.Contains("'Model.Predict': MaxBatchSize = 0", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.MaxConcurrentBatches = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.BatchWaitTimeout = TimeSpan.FromMilliseconds(-1));
        Assert.Equal(4, queue.MaxBatchSize);
    }

    private static async Task<List<T>> CollectAsync<T>(IAsyncEnumerable<T> stream, int take = int.MaxValue)
    {
        var items = new List<T>();
        await foreach (var item in stream)
        {
            items.Add(item);
            if (items.Count == take)
                break;
        }
        return items;
    }

    [Fact]
    public async Task Streaming_batch_gives_each_caller_its_own_stream_from_one_batch()
    {
        var probe = new BatchProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var tokens = await serve.RunAsync(Tokens.Bind(probe)).WaitAsync(Bound);

        var streams = Enumerable.Range(1, 3).Select(i => Task.Run(() => CollectAsync(tokens.GenerateAsync(i)))).ToArray();
        var results = await Task.WhenAll(streams).WaitAsync(Bound);

        for (var i = 1; i <= 3; i++)
            Assert.Equal([$"{i}:0", $"{i}:1", $"{i}:2"], results[i - 1]);
        Assert.Equal([1, 2, 3], Assert.Single(probe.Batches).Order());
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Tokens").Replicas.All(r => r.OngoingRequests == 0), "no slot stays taken");
    }

    [Fact]
    public async Task A_streaming_batch_step_with_the_wrong_item_count_fails_every_stream_naming_method_and_counts()
    {
        var probe = new BatchProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var tokens = await serve.RunAsync(Tokens.Bind(probe)).WaitAsync(Bound);

        var streams = new[] { 1, 2 }.Select(i => Task.Run(async () =>
        {
            var seen = new List<int>();
            var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            {
                await foreach (var item in tokens.UnevenAsync(i))
                    seen.Add(item);
            });
            return (seen, error);
        })).ToArray();

        foreach (var (seen, error) in await Task.WhenAll(streams).WaitAsync(Bound))
        {
            Assert.Single(seen);
            Assert.Contains("'Tokens.Uneven' yielded 1 item(s) at step 2 for a batch of 2 call(s)", error.Message);
        }
    }

    [Fact]
    public async Task When_every_stream_of_a_batch_stops_early_the_batch_token_is_cancelled()
    {
        var probe = new BatchProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var tokens = await serve.RunAsync(Tokens.Bind(probe)).WaitAsync(Bound);

        var first = Task.Run(() => CollectAsync(tokens.EndlessAsync(1), take: 2));
        var second = Task.Run(() => CollectAsync(tokens.EndlessAsync(2), take: 3));

        Assert.Equal([1000, 1001], await first.WaitAsync(Bound));
        Assert.Equal([2000, 2001, 2002], await second.WaitAsync(Bound));
        await TestUtil.WaitUntilAsync(() => probe.TokenCancelled.Count == 1, "the batch's token is cancelled");
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Tokens").Replicas.All(r => r.OngoingRequests == 0), "no slot stays taken");
    }

    [Fact]
    public async Task Concurrent_HTTP_requests_to_a_batched_call_method_run_as_one_batch()
    {
        var probe = new BatchProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(HttpBatched.Bind(probe)).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        var posts = new[] { 5, 6, 7 }.Select(async x =>
        {
            using var response = await http.PostAsync("/", new StringContent(x.ToString(), System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            return await response.Content.ReadAsStringAsync();
        }).ToArray();

        Assert.Equal(["10", "12", "14"], await Task.WhenAll(posts).WaitAsync(Bound));
        Assert.Equal([5, 6, 7], Assert.Single(probe.Batches).Order());
    }

    [Fact]
    public async Task A_batch_method_on_an_isolated_replica_batches_calls_that_cross_the_boundary()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var tagger = await serve.RunAsync(SizeTagger.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.Isolated())).WaitAsync(Bound);

        var tags = await Task.WhenAll(new[] { 1, 2, 3 }.Select(x => tagger.TagAsync(x).AsTask())).WaitAsync(Bound);

        Assert.Equal(["1/3", "2/3", "3/3"], tags);

        // Untyped calls with a timeout take the queued path across the boundary and join one batch too.
        var untyped = serve.GetHandle("SizeTagger").WithTimeout(TimeSpan.FromSeconds(20));
        var boxed = await Task.WhenAll(new[] { 4, 5, 6 }.Select(x => untyped.InvokeAsync("Tag", [x]).AsTask())).WaitAsync(Bound);
        Assert.Equal(["4/3", "5/3", "6/3"], boxed.Cast<string>());
    }

    [Fact]
    public async Task A_stopping_replica_runs_its_waiting_batches_at_once_instead_of_after_their_wait()
    {
        var probe = new BatchProbe();
        var (serve, doubler) = await StartAsync(probe);
        await using var _ = serve;

        // MaxBatchSize = 4 and a one-minute wait: alone, this call would wait a minute for three more.
        var call = doubler.DoubleAsync(21).AsTask();
        await TestUtil.WaitUntilAsync(() => doubler.StatsAsync().AsTask().Result == "0/1/4/1", "the call waits in its batch");

        var delete = serve.DeleteAsync("default");

        Assert.Equal(42, await call.WaitAsync(Bound));
        await delete.WaitAsync(Bound);
        Assert.Equal([21], Assert.Single(probe.Batches));
    }

    [Fact]
    public async Task Calls_for_different_model_ids_never_share_a_batch_and_the_batch_sees_its_model_id()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var tagger = await serve.RunAsync(ModelTagger.Bind()).WaitAsync(Bound);
        var a = tagger.WithModelId("a");
        var b = tagger.WithModelId("b");

        // Interleaved: a, b, a, b. MaxBatchSize = 2 with a one-minute wait, so only same-model pairs can close.
        var calls = new[] { a.TagAsync(1), b.TagAsync(2), a.TagAsync(3), b.TagAsync(4) }.Select(c => c.AsTask()).ToArray();

        Assert.Equal(["a:1/2", "b:2/2", "a:3/2", "b:4/2"], await Task.WhenAll(calls).WaitAsync(Bound));
    }
}
