using System.Runtime.CompilerServices;

namespace Serve.Tests;

/// <summary>Resource scheduling through a real host, against logical GPU inventories.</summary>
public class ResourceTests
{
    private const long GiB = 1L << 30;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync(double cpus, int gpus = 0, Action<ServeOptions>? configure = null) =>
        ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Resources.Cpus = cpus;
            o.Resources.UseLogicalGpus(gpus, 16 * GiB);
            configure?.Invoke(o);
        }).WaitAsync(Bound);

    /// <summary>A deployment's status message, or "" until the status lists it.</summary>
    private static string Message(IServeClient serve, string deployment) =>
        serve.ListDeployments().FirstOrDefault(d => d.Name == deployment)?.Message ?? "";

    [Fact]
    public async Task Two_half_GPU_replicas_share_one_device_with_half_its_memory_each()
    {
        await using var serve = await StartAsync(cpus: 8, gpus: 2);
        var handle = await serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.NumReplicas = 2; o.NumGpus = 0.5; })).WaitAsync(Bound);

        var seen = new HashSet<string>();
        await TestUtil.WaitUntilAsync(() =>
        {
            seen.Add(handle.CallAsync().AsTask().GetAwaiter().GetResult());
            return seen.Count == 2;
        }, "both replicas answered");
        foreach (var answer in seen)
            Assert.EndsWith($"gpu0 x0.5 budget={8 * GiB} physical=False", answer);
        Assert.All(serve.GetDeployment("GpuWorker").Replicas, r =>
        {
            Assert.Equal($"gpu0 × 0.5 (logical GPU 0, budget {8 * GiB} bytes)", r.Gpu);
            Assert.Equal(Environment.ProcessorCount, r.CpuThreads); // it asks for no CPUs: no thread limit
        });
    }

    [Fact]
    public async Task A_replica_asking_for_two_GPUs_holds_two_whole_devices()
    {
        await using var serve = await StartAsync(cpus: 8, gpus: 3);
        var handle = await serve.RunAsync(GpuWorker.Bind().WithOptions(o => o.NumGpus = 2)).WaitAsync(Bound);
        var ordinals = await handle.OrdinalsAsync();
        Assert.Equal(new[] { 0, 1 }, ordinals);
    }

    [Fact]
    public async Task A_replica_that_does_not_fit_waits_says_why_and_starts_when_another_application_is_deleted()
    {
        await using var serve = await StartAsync(cpus: 8, gpus: 1);
        await serve.RunAsync(GpuWorker.Bind().WithOptions(o => o.NumGpus = 0.7), new RunOptions { Name = "big" }).WaitAsync(Bound);

        var pending = serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.Name = "Small"; o.NumGpus = 0.5; }), new RunOptions { Name = "small", RoutePrefix = "/small" });
        await TestUtil.WaitUntilAsync(() => Message(serve, "Small").Length > 0, "the pending deployment reports why");
        var small = serve.GetDeployment("Small");
        Assert.Equal(ServeHealth.Updating, small.Status);
        Assert.Equal("Unschedulable: needs 0.5 GPU, 0.3 free on gpu0. 0 of 1 replica(s) running; the rest start as soon as resources free up.", small.Message);
        Assert.Empty(small.Replicas);
        Assert.False(pending.IsCompleted);

        await serve.DeleteAsync("big").WaitAsync(Bound);

        var handle = await pending.WaitAsync(Bound);
        Assert.EndsWith("gpu0 x0.5 budget=" + 8 * GiB + " physical=False", await handle.CallAsync());
        Assert.Equal("", serve.GetDeployment("Small").Message);
    }

    [Fact]
    public async Task An_application_that_can_never_fit_fails_RunAsync_fast_naming_deployment_and_resource()
    {
        await using var serve = await StartAsync(cpus: 8, gpus: 0);

        var e = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(GpuWorker.Bind().WithOptions(o => o.NumGpus = 0.5)).WaitAsync(Bound));
        Assert.Equal("GpuWorker", e.DeploymentName);
        Assert.Equal("default", e.ApplicationName);
        Assert.StartsWith("Unschedulable: needs 0.5 GPU, but the host has no GPU", e.Reason);
        Assert.Contains("deployment 'GpuWorker' can never be scheduled on this host", e.Message);
        Assert.Contains("call AddCuda()", e.Message);
        Assert.Empty(serve.GetStatus().Applications);

        var tooMany = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.NumReplicas = 9; o.NumCpus = 1; })).WaitAsync(Bound));
        Assert.Contains("needs 1 CPU, 0 of 8 free (placing replica 9 of 9)", tooMany.Message);
    }

    [Fact]
    public async Task A_redeploy_that_can_never_fit_is_refused_and_the_running_version_keeps_serving()
    {
        await using var serve = await StartAsync(cpus: 2);
        var app = GpuWorker.Bind().WithOptions(o => o.Version = "v1");
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        var before = serve.GetDeployment("GpuWorker").Replicas.Single().ReplicaId;

        await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(app.WithOptions(o => { o.Version = "v2"; o.NumCpus = 3; })).WaitAsync(Bound));

        Assert.Equal(before, serve.GetDeployment("GpuWorker").Replicas.Single().ReplicaId);
        Assert.Equal("v1", serve.GetDeployment("GpuWorker").Version);
        Assert.StartsWith(before, await handle.CallAsync());
    }

    [Fact]
    public async Task A_rolling_update_at_full_capacity_stops_an_old_replica_first_and_never_exceeds_the_pool()
    {
        var counter = new LiveCounter();
        await using var serve = await StartAsync(cpus: 2);
        var app = Counted.Bind(counter).WithOptions(o => { o.NumReplicas = 2; o.Version = "v1"; o.NumCpus = 1; });
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        Assert.Equal(2, counter.Live);

        using var stop = new CancellationTokenSource();
        var calls = 0;
        var load = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await handle.CallAsync(); // never fails: at least one replica serves or the call waits in the queue
                Interlocked.Increment(ref calls);
                await Task.Yield();
            }
        });
        await TestUtil.WaitUntilAsync(() => Volatile.Read(ref calls) > 0, "the load is running");

        await serve.RunAsync(app.WithOptions(o => o.Version = "v2")).WaitAsync(Bound);
        stop.Cancel();
        await load.WaitAsync(Bound); // rethrows a failed call, if any

        var deployment = serve.GetDeployment("Counted");
        Assert.Equal(ServeHealth.Healthy, deployment.Status);
        Assert.All(deployment.Replicas, r => Assert.Equal("v2", r.Version));
        Assert.Equal(2, deployment.Replicas.Count);
        Assert.Equal("v2", await handle.CallAsync());
        Assert.Equal(2, counter.MaxLive); // constructed-but-not-disposed instances never outnumbered the 2 CPUs
    }

    [Fact]
    public async Task Scaling_up_past_the_pool_starts_what_fits_and_the_rest_when_resources_free_up()
    {
        var counter = new LiveCounter();
        await using var serve = await StartAsync(cpus: 3);
        await serve.RunAsync(GpuWorker.Bind().WithOptions(o => o.NumCpus = 2), new RunOptions { Name = "other" }).WaitAsync(Bound);
        var app = Counted.Bind(counter).WithOptions(o => { o.Version = "v1"; o.NumCpus = 1; });
        await serve.RunAsync(app).WaitAsync(Bound);

        var scaleUp = serve.RunAsync(app.WithOptions(o => o.NumReplicas = 3));
        await TestUtil.WaitUntilAsync(() => Message(serve, "Counted").StartsWith("Unschedulable:"), "the scale-up reports the missing CPUs");
        Assert.Equal("Unschedulable: needs 1 CPU, 0 of 3 free. 1 of 3 replica(s) running; the rest start as soon as resources free up.", serve.GetDeployment("Counted").Message);
        Assert.Equal(1, counter.Live);

        await serve.DeleteAsync("other").WaitAsync(Bound);
        await scaleUp.WaitAsync(Bound);
        Assert.Equal(3, serve.GetDeployment("Counted").Replicas.Count(r => r.State == ReplicaState.Running));
        Assert.Equal(3, counter.MaxLive);
    }

    [Fact]
    public async Task An_autoscaled_deployment_is_checked_against_its_first_target_not_its_maximum()
    {
        await using var serve = await StartAsync(cpus: 2);
        var handle = await serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.NumCpus = 1; o.Autoscaling = new AutoscalingOptions { MinReplicas = 1, MaxReplicas = 5 }; })).WaitAsync(Bound);
        Assert.EndsWith("no gpu", await handle.CallAsync());

        var e = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(
            GpuWorker.Bind().WithOptions(o => { o.Name = "Wide"; o.NumCpus = 1; o.Autoscaling = new AutoscalingOptions { MinReplicas = 1, InitialReplicas = 3, MaxReplicas = 5 }; }),
            new RunOptions { Name = "wide", RoutePrefix = "/wide" }).WaitAsync(Bound));
        Assert.Contains("needs 1 CPU, 0 of 2 free (placing replica 3 of 3)", e.Message);
    }

    [Fact]
    public async Task A_GPU_runtime_supplies_the_devices_and_each_replicas_share_which_is_disposed_when_the_replica_stops()
    {
        var runtime = new FakeGpuRuntime(new GpuDevice(0, "fake A", 8 * GiB), new GpuDevice(1, "fake B", 4 * GiB));
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.Resources.GpuRuntime = runtime; }).WaitAsync(Bound);
        var handle = await serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.NumReplicas = 3; o.NumGpus = 0.5; })).WaitAsync(Bound);
        Assert.Contains("physical=True", await handle.CallAsync());

        var opened = runtime.Opened.ToArray();
        Assert.Equal(3, opened.Length);
        Assert.Equal(new[] { 0, 0, 1 }, opened.Select(g => g.Ordinal).Order().ToArray()); // best fit fills gpu0 first
        Assert.All(opened, g => Assert.Equal(g.Ordinal == 0 ? 4 * GiB : 2 * GiB, g.MemoryBudgetBytes));
        Assert.All(opened, g => Assert.StartsWith("GpuWorker#", g.Assignment.ReplicaId));

        await serve.DeleteAsync("default").WaitAsync(Bound);
        Assert.All(opened, g => Assert.True(g.Disposed, $"{g.Assignment.ReplicaId}'s GPU share is released when it stops"));
    }

    [Fact]
    public async Task A_GPU_runtime_whose_discovery_throws_leaves_the_host_running_with_no_GPU()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.Resources.GpuRuntime = new FakeGpuRuntime { ThrowOnDiscover = true }; }).WaitAsync(Bound);
        Assert.EndsWith("no gpu", await (await serve.RunAsync(GpuWorker.Bind()).WaitAsync(Bound)).CallAsync());
        var e = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.Name = "G"; o.NumGpus = 1; }), new RunOptions { Name = "g", RoutePrefix = "/g" }).WaitAsync(Bound));
        Assert.Contains("needs 1 GPU, but the host has no GPU", e.Message);
    }

    [Fact]
    public async Task Custom_resources_bound_how_many_replicas_run()
    {
        await using var serve = await StartAsync(cpus: 8, configure: o => o.Resources.Custom["accelerator"] = 1);
        var one = GpuWorker.Bind().WithOptions(o => o.Resources["accelerator"] = 1);
        await serve.RunAsync(one).WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(one.WithOptions(o => o.NumReplicas = 2), new RunOptions { Name = "two" }).WaitAsync(Bound));
        Assert.Contains("needs 1 \"accelerator\", 0 of 1 free (placing replica 2 of 2)", e.Message);

        var unknown = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(GpuWorker.Bind().WithOptions(o => o.Resources["tpu"] = 1), new RunOptions { Name = "tpu" }).WaitAsync(Bound));
        Assert.Contains("the host has no resource \"tpu\"", unknown.Message);

        var second = serve.RunAsync(one.WithOptions(o => o.Name = "Second"), new RunOptions { Name = "second", RoutePrefix = "/second" });
        await TestUtil.WaitUntilAsync(() => Message(serve, "Second").StartsWith("Unschedulable: needs 1 \"accelerator\", 0 of 1 free"), "the second application waits for the accelerator");
        await serve.DeleteAsync("default").WaitAsync(Bound);
        await second.WaitAsync(Bound);
    }

    [Fact]
    public async Task NumCpus_limits_how_many_calls_run_at_once_and_tells_user_code_its_threads()
    {
        var gate = new CpuGate();
        await using var serve = await StartAsync(cpus: 8);
        var handle = await serve.RunAsync(CpuBound.Bind(gate).WithOptions(o => o.NumCpus = 2)).WaitAsync(Bound);
        Assert.Equal(2, await handle.ThreadsAsync());

        // Six callers on six threads; each call blocks its thread inside the replica until the gate opens.
        var calls = Enumerable.Range(1, 6).Select(i => Task.Run(async () => await handle.CallAsync(i))).ToArray();
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("CpuBound").Replicas[0].OngoingRequests == 6, "all six calls were admitted by the router");
        await TestUtil.WaitUntilAsync(() => gate.Inside == 2, "two calls run");
        // Admitted calls that are not inside wait for a CPU slot; none can enter while both slots are held.
        Assert.Equal(2, gate.Inside);

        gate.Open();
        var results = await Task.WhenAll(calls).WaitAsync(Bound);
        Assert.Equal(new[] { 2, 4, 6, 8, 10, 12 }, results);
        Assert.Equal(2, gate.Peak);
    }

    [Fact]
    public async Task NumCpus_limits_an_isolated_replica_too()
    {
        using var gate = new ManualResetEventSlim();
        var inside = new StrongBox<int>();
        var peak = new StrongBox<int>();
        await using var serve = await StartAsync(cpus: 8);
        var handle = await serve.RunAsync(IsoCpuBound.Bind(gate, inside, peak).WithOptions(o => { o.NumCpus = 1; o.RuntimeEnv = RuntimeEnv.Isolated(); })).WaitAsync(Bound);
        Assert.NotEqual("Default", serve.GetDeployment("IsoCpuBound").Replicas.Single().LoadContext);

        var calls = Enumerable.Range(1, 4).Select(i => Task.Run(async () => await handle.CallAsync(i))).ToArray();
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("IsoCpuBound").Replicas[0].OngoingRequests == 4, "all four calls were admitted by the router");
        await TestUtil.WaitUntilAsync(() => Volatile.Read(ref inside.Value) == 1, "one call runs");
        Assert.Equal(1, Volatile.Read(ref inside.Value));

        gate.Set();
        var results = await Task.WhenAll(calls).WaitAsync(Bound);
        Assert.Equal(new[] { 2, 4, 6, 8 }, results);
        Assert.Equal(1, Volatile.Read(ref peak.Value));
    }

    [Fact]
    public async Task Calls_that_waited_for_a_CPU_slot_complete_and_fail_like_any_call()
    {
        var gate = new CpuGate();
        await using var serve = await StartAsync(cpus: 8);
        var handle = await serve.RunAsync(CpuBound.Bind(gate).WithOptions(o => o.NumCpus = 1)).WaitAsync(Bound);
        var untyped = serve.GetHandle("CpuBound");

        var blocker = Task.Run(async () => await handle.CallAsync(1));
        await TestUtil.WaitUntilAsync(() => gate.Inside == 1, "the first call holds the only CPU slot");
        var asyncCall = handle.TwiceAsync(5).AsTask();
        var boxed = untyped.InvokeAsync("Call", [7]).AsTask();
        var failing = handle.FailAsync().AsTask();
        var scheduler = handle.SeesDefaultSchedulerAsync().AsTask();
        Assert.False(asyncCall.IsCompleted || boxed.IsCompleted || failing.IsCompleted || scheduler.IsCompleted);

        gate.Open();
        Assert.Equal(2, await blocker.WaitAsync(Bound));
        Assert.Equal(15, await asyncCall.WaitAsync(Bound));
        Assert.Equal(14, await boxed.WaitAsync(Bound));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => failing.WaitAsync(Bound));
        Assert.StartsWith("boom in CpuBound#", e.Message);
        Assert.True(await scheduler.WaitAsync(Bound), "a call that waited for a CPU slot sees the default scheduler, so tasks it starts are not limited");
        Assert.Equal(1, gate.Peak);
    }

    [Fact]
    public async Task NumCpus_zero_reserves_nothing_and_leaves_calls_unlimited()
    {
        await using var serve = await StartAsync(cpus: 0);
        var handle = await serve.RunAsync(GpuWorker.Bind().WithOptions(o => { o.NumCpus = 0; o.NumReplicas = 3; })).WaitAsync(Bound);
        Assert.Equal(Environment.ProcessorCount, await handle.CpuThreadsAsync());
        Assert.EndsWith("no gpu", await handle.CallAsync());
    }

    [Fact]
    public async Task The_admin_API_answers_422_naming_the_resource_for_a_config_that_can_never_fit()
    {
        await using var serve = await StartAsync(cpus: 1, configure: o => { o.Admin.Enabled = true; o.Admin.Port = 0; });
        var import = $"{typeof(TestApps).Assembly.Location.Replace('\\', '/')}:Serve.Tests.TestApps.Hello";
        var yaml = $"applications:\n  - name: big\n    import: {import}\n    args:\n      message: hi\n    deployments:\n      - name: Greeter\n        num_replicas: 2\n        num_cpus: 1\n";
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };

        using var response = await http.PutAsync("/api/serve/applications", new StringContent(yaml, System.Text.Encoding.UTF8, "application/yaml")).WaitAsync(Bound);

        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var body = (string)System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["message"]!;
        Assert.Contains("deployment 'Greeter' can never be scheduled on this host", body);
        Assert.Contains("needs 1 CPU, 0 of 1 free (placing replica 2 of 2)", body);
        Assert.Empty(serve.GetStatus().Applications);
    }
}
