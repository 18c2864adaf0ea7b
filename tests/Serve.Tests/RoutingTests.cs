namespace Serve.Tests;

public class RoutingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Calls_spread_over_replicas_and_never_exceed_MaxOngoingRequests()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 3; o.MaxOngoingRequests = 2; })).WaitAsync(Bound);

        var calls = Enumerable.Range(0, 12).Select(i => holder.HoldAsync(i).AsTask()).ToArray();
        await probe.WaitEnteredAsync(6);

        // 3 replicas x 2 slots are busy; the other 6 calls wait in the queue.
        Assert.Equal(6, probe.Inside);
        Assert.Equal(6, serve.GetDeployment("Holder").QueuedRequests);
        Assert.Equal(3, probe.PerReplicaMax.Count);
        Assert.All(probe.PerReplicaMax.Values, max => Assert.Equal(2, max));

        probe.Release();
        var served = await Task.WhenAll(calls).WaitAsync(Bound);
        Assert.Equal(3, served.Distinct().Count());
        Assert.True(probe.MaxInside <= 6);
        Assert.All(probe.PerReplicaMax.Values, max => Assert.True(max <= 2));
    }

    [Fact]
    public async Task A_full_queue_fails_at_once_with_BackPressureException_naming_the_limits()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o =>
        {
            o.NumReplicas = 1;
            o.MaxOngoingRequests = 1;
            o.MaxQueuedRequests = 2;
        })).WaitAsync(Bound);

        var running = holder.HoldAsync(0).AsTask();
        await probe.WaitEnteredAsync(1);
        var queued = new[] { holder.HoldAsync(1).AsTask(), holder.HoldAsync(2).AsTask() };

        var error = await Assert.ThrowsAsync<BackPressureException>(async () => await holder.HoldAsync(3));
        Assert.Equal("Holder", error.DeploymentName);
        Assert.Contains("'Holder'", error.Message);
        Assert.Contains("MaxOngoingRequests", error.Message);
        Assert.Contains("2 request(s) are queued (MaxQueuedRequests)", error.Message);

        probe.Release();
        await Task.WhenAll(queued.Append(running)).WaitAsync(Bound);
    }

    [Fact]
    public async Task Queued_calls_are_served_first_in_first_out()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 1; o.MaxOngoingRequests = 1; })).WaitAsync(Bound);

        var first = holder.HoldAsync(0).AsTask();
        await probe.WaitEnteredAsync(1);
        var rest = new List<Task<string>>();
        for (var i = 1; i <= 8; i++)
        {
            rest.Add(holder.HoldAsync(i).AsTask());
            // Wait until the call is really queued so the enqueue order is the ticket order.
            var expected = i;
            await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Holder").QueuedRequests == expected, $"call {i} is queued");
        }
        probe.Release();
        await Task.WhenAll(rest.Append(first)).WaitAsync(Bound);

        Assert.Equal(Enumerable.Range(0, 9), probe.Entered);
    }

    [Fact]
    public async Task Cancelling_a_queued_call_takes_it_out_of_the_queue()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 1; o.MaxOngoingRequests = 1; })).WaitAsync(Bound);

        var running = holder.HoldAsync(0).AsTask();
        await probe.WaitEnteredAsync(1);
        using var cts = new CancellationTokenSource();
        var queued = holder.HoldAsync(1, cts.Token).AsTask();
        Assert.Equal(1, serve.GetDeployment("Holder").QueuedRequests);

        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued.WaitAsync(Bound));
        Assert.Equal(0, serve.GetDeployment("Holder").QueuedRequests);

        probe.Release();
        await running.WaitAsync(Bound);
        Assert.Equal([0], probe.Entered);
    }

    [Fact]
    public async Task Many_concurrent_callers_on_few_slots_lose_no_wake_up()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var yielder = await serve.RunAsync(Yielder.Bind(probe)).WaitAsync(Bound);

        // 32 callers contend for 2 slots on methods that really go async, so most calls pass through the queue.
        var workers = Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            var sum = 0L;
            for (var i = 0; i < 300; i++)
                sum += await yielder.CallAsync(i);
            return sum;
        })).ToArray();

        var sums = await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.All(sums, s => Assert.Equal(299L * 300 / 2, s));
        var info = serve.GetDeployment("Yielder");
        Assert.Equal(0, info.QueuedRequests);
        Assert.All(info.Replicas, r => Assert.Equal(0, r.OngoingRequests));
        Assert.Equal(2, probe.PerReplicaMax.Count);
        Assert.All(probe.PerReplicaMax.Values, max => Assert.Equal(1, max));
    }
}
