namespace Serve.Tests;

public class CancellationTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    // For calls that must reach the replica before they time out, even on a loaded machine (first-call JIT included).
    private static readonly TimeSpan Reach = TimeSpan.FromSeconds(2);

    private static Task NoSlotTakenAsync(ServeHost serve, string deployment) =>
        TestUtil.WaitUntilAsync(
            () => serve.GetDeployment(deployment) is { QueuedRequests: 0 } d && d.Replicas.All(r => r.OngoingRequests == 0),
            $"no replica of {deployment} is busy and nothing is queued");

    [Fact]
    public async Task Cancelling_a_running_call_cancels_the_token_the_replica_method_sees()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => o.NumReplicas = 1)).WaitAsync(Bound);

        using var cancel = new CancellationTokenSource();
        var call = holder.HoldAsync(1, cancel.Token).AsTask();
        await probe.WaitEnteredAsync(1);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound));
        Assert.Equal(0, probe.Inside);
        await NoSlotTakenAsync(serve, "Holder");
    }

    [Fact]
    public async Task Cancelling_a_queued_call_takes_it_out_of_the_queue_at_once()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 1; o.MaxOngoingRequests = 1; })).WaitAsync(Bound);

        var running = holder.HoldAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);
        using var cancel = new CancellationTokenSource();
        var queued = holder.HoldAsync(2, cancel.Token).AsTask();
        Assert.Equal(1, serve.GetDeployment("Holder").QueuedRequests);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued.WaitAsync(Bound));
        Assert.Equal(0, serve.GetDeployment("Holder").QueuedRequests);

        probe.Release();
        await running.WaitAsync(Bound);
        Assert.Equal([1], probe.Entered);
    }

    [Fact]
    public async Task WithTimeout_returns_a_handle_of_the_same_generated_type_and_leaves_the_original_alone()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe)).WaitAsync(Bound);

        HolderHandle timed = holder.WithTimeout(TimeSpan.FromSeconds(5));

        Assert.IsType<HolderHandle>(timed);
        Assert.Equal(TimeSpan.FromSeconds(5), timed.Timeout);
        Assert.Null(holder.Timeout);
        Assert.Null(timed.WithTimeout(Timeout.InfiniteTimeSpan).Timeout);
        Assert.Equal("Holder", timed.DeploymentName);
        Assert.NotEmpty(await timed.WhoAmIAsync());
        var untyped = serve.GetHandle("Holder").WithTimeout(Short);
        Assert.Equal(typeof(DeploymentHandle), untyped.GetType());

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => holder.WithTimeout(TimeSpan.Zero));
        Assert.Contains("'Holder'", error.Message);
        Assert.Contains("Timeout.InfiniteTimeSpan", error.Message);
    }

    [Fact]
    public async Task A_call_running_past_its_timeout_fails_with_TimeoutException_and_its_method_is_cancelled()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => o.NumReplicas = 1)).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<TimeoutException>(() => holder.WithTimeout(Reach).HoldAsync(1).AsTask().WaitAsync(Bound));

        Assert.Contains("Hold on deployment 'Holder' (application 'default')", error.Message);
        Assert.Contains(Reach.ToString(), error.Message);
        Assert.Contains("WithTimeout", error.Message);
        Assert.Equal([1], probe.Entered);
        await TestUtil.WaitUntilAsync(() => probe.Inside == 0, "the method returned after its token was cancelled");
        await NoSlotTakenAsync(serve, "Holder");
    }

    [Fact]
    public async Task A_call_timing_out_in_the_queue_leaves_it_and_never_runs()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 1; o.MaxOngoingRequests = 1; })).WaitAsync(Bound);

        var running = holder.HoldAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);

        await Assert.ThrowsAsync<TimeoutException>(() => holder.WithTimeout(Short).HoldAsync(2).AsTask().WaitAsync(Bound));
        Assert.Equal(0, serve.GetDeployment("Holder").QueuedRequests);

        probe.Release();
        await running.WaitAsync(Bound);
        Assert.Equal([1], probe.Entered);
    }

    [Fact]
    public async Task A_method_ignoring_its_token_times_out_for_the_caller_but_keeps_its_slot_until_it_returns()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var stubborn = await serve.RunAsync(Stubborn.Bind(probe)).WaitAsync(Bound);

        // Reach, not Short: a call with a timeout starts on a thread-pool thread, and must get there before its deadline.
        await Assert.ThrowsAsync<TimeoutException>(() => stubborn.WithTimeout(Reach).WaitAsync(1).AsTask().WaitAsync(Bound));

        // The replica really is busy until the method returns.
        Assert.Equal(1, probe.Inside);
        Assert.Equal(1, Assert.Single(serve.GetDeployment("Stubborn").Replicas).OngoingRequests);
        probe.Release();
        await NoSlotTakenAsync(serve, "Stubborn");
        Assert.NotEmpty(await stubborn.WaitAsync(2).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task No_replica_stays_busy_after_every_caller_gave_up()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 2; o.MaxOngoingRequests = 2; })).WaitAsync(Bound);

        // 4 calls run (2 replicas x 2 slots) and 8 wait; half give up by cancellation, half by timeout.
        using var cancel = new CancellationTokenSource();
        var timed = holder.WithTimeout(TimeSpan.FromMilliseconds(300));
        var calls = Enumerable.Range(0, 12)
            .Select(i => i % 2 == 0 ? holder.HoldAsync(i, cancel.Token).AsTask() : timed.HoldAsync(i).AsTask())
            .ToArray();
        await probe.WaitEnteredAsync(4);
        cancel.Cancel();

        foreach (var call in calls)
            await Assert.ThrowsAnyAsync<Exception>(() => call.WaitAsync(Bound));
        Assert.All(calls, c => Assert.True(c.IsCanceled || c.Exception?.InnerException is TimeoutException, c.Exception?.ToString()));
        await NoSlotTakenAsync(serve, "Holder");
        Assert.Equal(0, probe.Inside);

        // All 4 slots are free: 4 new calls run at once, 2 on each replica.
        var fresh = Enumerable.Range(20, 4).Select(i => holder.HoldAsync(i).AsTask()).ToArray();
        await TestUtil.WaitUntilAsync(() => Enumerable.Range(20, 4).All(probe.Entered.Contains), "the 4 new calls are inside replicas");
        Assert.Equal(0, serve.GetDeployment("Holder").QueuedRequests);
        probe.Release();
        Assert.Equal(2, (await Task.WhenAll(fresh).WaitAsync(Bound)).Distinct().Count());
    }

    [Fact]
    public async Task An_untyped_call_with_a_timeout_fails_with_TimeoutException()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(Holder.Bind(probe).WithOptions(o => o.NumReplicas = 1)).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<TimeoutException>(() => serve.GetHandle("Holder").WithTimeout(Short).InvokeAsync("Hold", [1]).AsTask().WaitAsync(Bound));

        Assert.Contains("'Holder'", error.Message);
        await NoSlotTakenAsync(serve, "Holder");
    }

    [Fact]
    public async Task A_typed_stream_is_pulled_item_by_item_and_stopping_early_cancels_the_producer()
    {
        var probe = new ProducerProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var producer = await serve.RunAsync(Producer.Bind(probe)).WaitAsync(Bound);

        var seen = new List<int>();
        await foreach (var item in producer.CallAsync(1000))
        {
            // Backpressure: the producer has made exactly the items the consumer asked for.
            Assert.Equal(item + 1, probe.Produced);
            seen.Add(item);
            if (item == 2)
                break;
        }

        Assert.Equal([0, 1, 2], seen);
        await probe.Cancelled.Task.WaitAsync(Bound);
        await probe.Finished.Task.WaitAsync(Bound);
        Assert.Equal(3, probe.Produced);
        await NoSlotTakenAsync(serve, "Producer");
    }

    [Fact]
    public async Task An_untyped_stream_stopping_early_cancels_the_producer_too()
    {
        var probe = new ProducerProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(Producer.Bind(probe)).WaitAsync(Bound);

        await foreach (var item in serve.GetHandle("Producer").InvokeCallStreamAsync([1000, -1]))
        {
            if ((int)item! == 1)
                break;
        }

        await probe.Cancelled.Task.WaitAsync(Bound);
        Assert.Equal(2, probe.Produced);
        await NoSlotTakenAsync(serve, "Producer");
    }

    [Fact]
    public async Task Cancelling_a_stream_consumer_token_cancels_the_producer()
    {
        var probe = new ProducerProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var producer = await serve.RunAsync(Producer.Bind(probe)).WaitAsync(Bound);

        using var cancel = new CancellationTokenSource();
        var seen = new List<int>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var item in producer.CallAsync(10, stallAfter: 2, cancel.Token))
            {
                seen.Add(item);
                if (item == 1)
                    cancel.Cancel();
            }
        });

        Assert.Equal([0, 1], seen);
        await probe.Cancelled.Task.WaitAsync(Bound);
        await NoSlotTakenAsync(serve, "Producer");
    }

    [Fact]
    public async Task A_stream_past_its_timeout_fails_with_TimeoutException_and_cancels_the_producer()
    {
        var probe = new ProducerProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var producer = await serve.RunAsync(Producer.Bind(probe)).WaitAsync(Bound);

        var seen = new List<int>();
        var error = await Assert.ThrowsAsync<TimeoutException>(async () =>
        {
            await foreach (var item in producer.WithTimeout(Reach).CallAsync(10, stallAfter: 2))
                seen.Add(item);
        });

        Assert.Equal([0, 1], seen);
        Assert.Contains("Call on deployment 'Producer'", error.Message);
        await probe.Cancelled.Task.WaitAsync(Bound);
        await NoSlotTakenAsync(serve, "Producer");
    }

    [Fact]
    public async Task A_timed_out_call_inside_an_HTTP_request_is_answered_504()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(ImpatientIngress.Bind(Stubborn.Bind(probe))).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        using var response = await http.GetAsync("/");

        Assert.Equal(System.Net.HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.StartsWith("Gateway timeout: a call inside the application timed out; request id ", await response.Content.ReadAsStringAsync());
        probe.Release();
        await NoSlotTakenAsync(serve, "Stubborn");
    }

    [Fact]
    public async Task A_void_method_past_its_timeout_fails_with_TimeoutException_and_frees_its_slot()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var stubborn = await serve.RunAsync(Stubborn.Bind(probe)).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<TimeoutException>(() => stubborn.WithTimeout(Short).NapAsync().AsTask().WaitAsync(Bound));

        Assert.Contains("Nap on deployment 'Stubborn'", error.Message);
        await NoSlotTakenAsync(serve, "Stubborn");
    }

    public enum BlockingCall { Typed, Void, Untyped }

    [Theory]
    [InlineData(1, BlockingCall.Typed)]
    [InlineData(1, BlockingCall.Void)]
    [InlineData(1, BlockingCall.Untyped)]
    [InlineData(0, BlockingCall.Typed)]
    [InlineData(0, BlockingCall.Void)]
    [InlineData(0, BlockingCall.Untyped)]
    public async Task A_method_blocking_its_thread_past_the_timeout_fails_its_caller_at_the_deadline_and_keeps_its_slot(int numCpus, BlockingCall kind)
    {
        var state = new SlotHogState();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var hog = await serve.RunAsync(SlotHog.Bind(state).WithOptions(o => o.NumCpus = numCpus)).WaitAsync(Bound);

        // The method ignores its token and blocks its thread until the gate opens, long after the deadline (Reach: the
        // call must start before its deadline to be blocking when it passes).
        var call = kind switch
        {
            BlockingCall.Typed => hog.WithTimeout(Reach).BlockAsync(1).AsTask(),
            BlockingCall.Void => hog.WithTimeout(Reach).BlockVoidAsync().AsTask(),
            _ => serve.GetHandle("SlotHog").WithTimeout(Reach).InvokeAsync("Block", [1]).AsTask(),
        };
        var error = await Assert.ThrowsAsync<TimeoutException>(() => call.WaitAsync(Bound));

        Assert.Contains($"{(kind == BlockingCall.Void ? "BlockVoid" : "Block")} on deployment 'SlotHog'", error.Message);
        Assert.Contains("WithTimeout", error.Message);
        // The caller got its TimeoutException while the method still blocks, and the replica is busy until it returns.
        Assert.Equal(1, state.Blocked);
        Assert.Equal(1, Assert.Single(serve.GetDeployment("SlotHog").Replicas).OngoingRequests);
        state.Open();
        await NoSlotTakenAsync(serve, "SlotHog");
        Assert.Equal(2, await hog.RecordAsync(2).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_stream_whose_producer_blocks_its_thread_past_the_timeout_fails_its_consumer_at_the_deadline_and_keeps_its_slot()
    {
        var state = new SlotHogState();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var hog = await serve.RunAsync(SlotHog.Bind(state).WithOptions(o => o.NumCpus = 1)).WaitAsync(Bound);

        var items = new List<int>();
        var consume = Task.Run(async () =>
        {
            await foreach (var item in hog.WithTimeout(Reach).DripAsync())
                items.Add(item);
        });
        var error = await Assert.ThrowsAsync<TimeoutException>(() => consume.WaitAsync(Bound));

        Assert.Contains("Drip on deployment 'SlotHog'", error.Message);
        Assert.Equal([1], items);
        // The consumer got its TimeoutException while the producer still blocks; the replica is busy until it returns.
        Assert.Equal(1, state.Blocked);
        Assert.Equal(1, Assert.Single(serve.GetDeployment("SlotHog").Replicas).OngoingRequests);
        state.Open();
        await NoSlotTakenAsync(serve, "SlotHog");
        Assert.Empty(state.AfterDispose);
    }

    [Fact]
    public async Task A_call_waiting_for_a_CPU_slot_leaves_on_cancellation_or_timeout_and_never_runs()
    {
        var state = new SlotHogState();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var hog = await serve.RunAsync(SlotHog.Bind(state).WithOptions(o => o.NumCpus = 1)).WaitAsync(Bound);
        var untyped = serve.GetHandle("SlotHog");
        var replica = () => Assert.Single(serve.GetDeployment("SlotHog").Replicas);

        // Holds the only CPU slot, blocking its own thread (not a thread-pool one, which queued calls need).
        var blocker = Task.Factory.StartNew(() => hog.BlockAsync(1).AsTask(), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        await TestUtil.WaitUntilAsync(() => state.Blocked == 1, "the first call holds the only CPU slot");

        // Admitted by the router (the replica has room for 8), each waits for the CPU slot.
        using var cancel = new CancellationTokenSource();
        var typed = hog.RecordAsync(2, cancel.Token).AsTask();
        var boxed = untyped.InvokeAsync("Record", [3], cancel.Token).AsTask();
        await TestUtil.WaitUntilAsync(() => replica().OngoingRequests == 3, "both calls were admitted to the replica");
        Assert.False(typed.IsCompleted || boxed.IsCompleted);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => typed.WaitAsync(Bound));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => boxed.WaitAsync(Bound));
        var timedOut = await Assert.ThrowsAsync<TimeoutException>(() => hog.WithTimeout(Short).RecordAsync(4).AsTask().WaitAsync(Bound));
        Assert.Contains("Record on deployment 'SlotHog'", timedOut.Message);
        // They left the replica at once: only the blocked call holds a slot.
        await TestUtil.WaitUntilAsync(() => replica().OngoingRequests == 1, "the cancelled calls released their replica slots");

        state.Open();
        Assert.Equal(1, await blocker.WaitAsync(Bound));
        await NoSlotTakenAsync(serve, "SlotHog");
        Assert.Equal(5, await hog.RecordAsync(5).AsTask().WaitAsync(Bound));
        // None of the calls that gave up while waiting for the slot ran, then or after the slot freed.
        Assert.Equal([5], state.Ran);
    }
}
