using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Serve.Tests;

public class ControllerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static string[] ReplicaIds(IServeClient serve, string deployment) =>
        serve.GetDeployment(deployment).Replicas.Select(r => r.ReplicaId).Order().ToArray();

    [Fact]
    public async Task Redeploying_the_same_version_and_options_changes_nothing()
    {
        var probe = new Probe();
        probe.Release();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var app = Holder.Bind(probe).WithOptions(o => o.Version = "v1");
        await serve.RunAsync(app).WaitAsync(Bound);
        var before = ReplicaIds(serve, "Holder");

        var handle = await serve.RunAsync(app).WaitAsync(Bound);

        Assert.Equal(before, ReplicaIds(serve, "Holder"));
        Assert.Empty(probe.Disposed);
        Assert.Equal("v1", await handle.VersionAsync());
    }

    [Fact]
    public async Task Changing_NumReplicas_adds_or_removes_only_the_difference()
    {
        var probe = new Probe();
        probe.Release();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var app = Holder.Bind(probe).WithOptions(o => o.Version = "v1");
        await serve.RunAsync(app.WithOptions(o => o.NumReplicas = 2)).WaitAsync(Bound);
        var two = ReplicaIds(serve, "Holder");

        await serve.RunAsync(app.WithOptions(o => o.NumReplicas = 4)).WaitAsync(Bound);
        var four = ReplicaIds(serve, "Holder");
        Assert.Equal(4, four.Length);
        Assert.Subset(four.ToHashSet(), two.ToHashSet());
        Assert.Empty(probe.Disposed);

        await serve.RunAsync(app.WithOptions(o => o.NumReplicas = 1)).WaitAsync(Bound);
        var one = ReplicaIds(serve, "Holder");
        Assert.Single(one);
        Assert.Contains(one[0], four);
        await TestUtil.WaitUntilAsync(() => probe.Disposed.Count == 3, "the three removed replicas are disposed");
        Assert.DoesNotContain(one[0], probe.Disposed);
    }

    [Fact]
    public async Task A_new_version_rolls_over_every_replica_without_a_failed_call()
    {
        var probe = new Probe();
        probe.Release();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var app = Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 5; o.Version = "v1"; o.MaxOngoingRequests = 4; });
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        var oldIds = ReplicaIds(serve, "Holder");

        using var stop = new CancellationTokenSource();
        var versionsSeen = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var minServing = int.MaxValue;
        var load = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            var calls = 0;
            while (!stop.IsCancellationRequested)
            {
                versionsSeen.AddOrUpdate(await handle.VersionAsync(), 1, (_, n) => n + 1);
                calls++;
                await Task.Yield(); // the call completes synchronously; let the controller have the cores too
            }
            return calls;
        })).ToArray();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var serving = serve.GetDeployment("Holder").Replicas.Count(r => r.State == ReplicaState.Running);
                minServing = Math.Min(minServing, serving);
                await Task.Delay(1);
            }
        });

        await TestUtil.WaitUntilAsync(() => versionsSeen.ContainsKey("v1"), "load reaches v1");
        await serve.RunAsync(app.WithOptions(o => o.Version = "v2")).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => versionsSeen.ContainsKey("v2"), "load reaches v2");
        stop.Cancel();
        var calls = await Task.WhenAll(load).WaitAsync(Bound); // any failed call would throw here
        await watcher;

        Assert.True(calls.Sum() > 0);
        var info = serve.GetDeployment("Holder");
        Assert.Equal("v2", info.Version);
        Assert.Equal(5, info.Replicas.Count);
        Assert.All(info.Replicas, r => Assert.Equal("v2", r.Version));
        Assert.Empty(ReplicaIds(serve, "Holder").Intersect(oldIds));
        Assert.True(minServing >= 4, $"at least 80% of 5 replicas serve during the update (saw {minServing})");
        await TestUtil.WaitUntilAsync(() => probe.Disposed.Count == 5, "old replicas are disposed");
        Assert.Equal(oldIds.Order(), probe.Disposed.Order());
    }

    [Fact]
    public async Task Changing_only_UserConfig_reconfigures_live_replicas_in_place()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var app = Configurable.Bind(probe).WithOptions(o => { o.Version = "v1"; o.UserConfig = new GreetingConfig("Hello"); });
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        var ids = ReplicaIds(serve, "Configurable");

        // ReconfigureAsync ran on every replica before its first request.
        Assert.Equal("Hello, Ada", await handle.CallAsync("Ada"));
        Assert.Equal(ids, probe.Configs.Select(c => c.Split(':')[0]).Order());

        // A config given as JSON-shaped data of another type is converted.
        await serve.RunAsync(app.WithOptions(o => o.UserConfig = new Dictionary<string, string> { ["Greeting"] = "Bonjour" })).WaitAsync(Bound);

        Assert.Equal(ids, ReplicaIds(serve, "Configurable"));
        for (var i = 0; i < 10; i++)
            Assert.Equal("Bonjour, Ada", await handle.CallAsync("Ada"));
        Assert.Equal(4, probe.Configs.Count);
        Assert.Equal(ServeHealth.Healthy, serve.GetStatus().Applications.Single().Status);
    }

    [Fact]
    public async Task A_constructor_that_keeps_throwing_fails_RunAsync_and_other_applications_keep_serving()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.ReplicaStartBackoff = TimeSpan.FromMilliseconds(5); o.Http.Enabled = false; });
        var greeter = await serve.RunAsync(Greeter.Bind("still here"), new RunOptions { Name = "good" }).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Broken.Bind(), new RunOptions { Name = "bad" }).WaitAsync(Bound));

        Assert.Equal("Broken", error.DeploymentName);
        Assert.Equal("bad", error.ApplicationName);
        Assert.Contains("model file weights.bin is missing", error.Message);
        Assert.Contains("3 time(s)", error.Message);
        Assert.IsType<InvalidOperationException>(error.InnerException);

        var bad = serve.GetStatus().Applications.Single(a => a.Name == "bad");
        Assert.Equal(ServeHealth.Unhealthy, bad.Status);
        Assert.Contains("weights.bin", bad.Message);
        Assert.Equal(ServeHealth.Healthy, serve.GetStatus().Applications.Single(a => a.Name == "good").Status);
        Assert.Equal("still here", await greeter.CallAsync());

        await serve.DeleteAsync("bad").WaitAsync(Bound);
        Assert.Equal(["good"], serve.GetStatus().Applications.Select(a => a.Name));
    }

    [Fact]
    public async Task A_failed_update_keeps_the_old_version_serving()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.ReplicaStartBackoff = TimeSpan.FromMilliseconds(5); o.Http.Enabled = false; });
        var handle = await serve.RunAsync(Versioned.Bind("v1", false)).WaitAsync(Bound);
        var ids = ReplicaIds(serve, "Versioned");

        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Versioned.Bind("v2", true)).WaitAsync(Bound));
        Assert.Contains("version v2 cannot load", error.Message);

        Assert.Equal(ids, ReplicaIds(serve, "Versioned"));
        Assert.Equal("v1", await handle.CallAsync());
        Assert.Equal(ServeHealth.Unhealthy, serve.GetDeployment("Versioned").Status);

        // Fixing the code and redeploying recovers.
        await serve.RunAsync(Versioned.Bind("v3", false)).WaitAsync(Bound);
        Assert.Equal("v3", await handle.CallAsync());
        Assert.Equal(ServeHealth.Healthy, serve.GetDeployment("Versioned").Status);
    }

    [Fact]
    public async Task Replacing_a_deployment_with_another_class_retires_the_old_handles_clearly()
    {
        var probe = new Probe();
        probe.Release();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var old = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => o.Name = "Model")).WaitAsync(Bound);
        var replacement = await serve.RunAsync(Greeter.Bind("new").WithOptions(o => o.Name = "Model")).WaitAsync(Bound);

        Assert.Equal("new", await replacement.CallAsync());
        var gone = await Assert.ThrowsAsync<DeploymentUnavailableException>(async () => await old.VersionAsync());
        Assert.Contains("'Model'", gone.Message);
        Assert.Contains("get a new handle", gone.Message);
        await TestUtil.WaitUntilAsync(() => probe.Disposed.Count == 2, "the old replicas are disposed");
    }

    [Fact]
    public async Task Shutdown_drains_in_flight_calls_refuses_new_ones_and_disposes_replicas()
    {
        var probe = new Probe();
        var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var holder = await serve.RunAsync(Holder.Bind(probe).WithOptions(o => { o.NumReplicas = 1; o.MaxOngoingRequests = 1; })).WaitAsync(Bound);
        var inFlight = holder.HoldAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);
        var queued = holder.HoldAsync(2).AsTask();
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Holder").QueuedRequests == 1, "the second call is queued");

        var shutdown = serve.ShutdownAsync();
        await TestUtil.WaitUntilAsync(() => serve.GetStatus().Applications.All(a => a.Status == ServeHealth.Deleting), "the application is deleting");

        var refused = await Assert.ThrowsAsync<DeploymentUnavailableException>(async () => await holder.HoldAsync(3));
        Assert.Contains("shutting down", refused.Message);
        Assert.False(shutdown.IsCompleted);
        Assert.Empty(probe.Disposed);

        probe.Release();
        await Task.WhenAll(inFlight, queued).WaitAsync(Bound);
        await shutdown.WaitAsync(Bound);
        Assert.Single(probe.Disposed);
        Assert.Empty(serve.GetStatus().Applications);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => serve.RunAsync(Greeter.Bind("late")));
        // Shutting down again (or disposing) is harmless.
        await serve.ShutdownAsync().WaitAsync(Bound);
        await serve.DisposeAsync();
    }

    [Fact]
    public async Task DeleteAsync_drains_one_application_and_leaves_the_others()
    {
        var probe = new Probe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var greeter = await serve.RunAsync(Greeter.Bind("hi"), new RunOptions { Name = "keep" }).WaitAsync(Bound);
        var holder = await serve.RunAsync(Holder.Bind(probe), new RunOptions { Name = "drop" }).WaitAsync(Bound);
        var inFlight = holder.HoldAsync(1).AsTask();
        await probe.WaitEnteredAsync(1);

        var delete = serve.DeleteAsync("drop");
        await TestUtil.WaitUntilAsync(() => serve.GetStatus().Applications.Single(a => a.Name == "drop").Status == ServeHealth.Deleting, "'drop' is deleting");
        var refused = await Assert.ThrowsAsync<DeploymentUnavailableException>(async () => await holder.HoldAsync(2));
        Assert.Contains("'drop' was deleted", refused.Message);
        probe.Release();
        Assert.False(string.IsNullOrEmpty(await inFlight.WaitAsync(Bound)));
        await delete.WaitAsync(Bound);

        Assert.Equal(2, probe.Disposed.Count);
        Assert.Equal(["keep"], serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal("hi", await greeter.CallAsync());
        var missing = await Assert.ThrowsAsync<DeploymentNotFoundException>(() => serve.DeleteAsync("drop"));
        Assert.Contains("'drop'", missing.Message);
    }

    [Fact]
    public async Task Status_reports_applications_deployments_and_replicas()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(Driver.Bind(ModelA.Bind().WithOptions(o => o.NumReplicas = 2), ModelB.Bind()), new RunOptions { Name = "math", RoutePrefix = "/math" }).WaitAsync(Bound);

        var app = Assert.Single(serve.GetStatus().Applications);
        Assert.Equal("math", app.Name);
        Assert.Equal("/math", app.RoutePrefix);
        Assert.Equal("Driver", app.IngressDeployment);
        Assert.Equal(ServeHealth.Healthy, app.Status);
        Assert.Equal("/math", serve.GetDeployment("Driver").RoutePrefix);
        Assert.Null(serve.GetDeployment("ModelA").RoutePrefix);
        Assert.Equal(2, serve.GetDeployment("ModelA", "math").Replicas.Count);
        Assert.All(app.Deployments, d => Assert.Equal(ServeHealth.Healthy, d.Status));
    }

    [Fact]
    public async Task The_hosted_service_deploys_at_start_and_drains_at_stop()
    {
        var probe = new Probe();
        probe.Release();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton<IClock, FixedClock>();
        builder.Services.AddServe(o => o.Http.Enabled = false)
            .AddApplication(Driver.Bind(ModelA.Bind(), ModelB.Bind()))
            .AddApplication(Holder.Bind(probe), new RunOptions { Name = "holder" })
            .AddApplication(Injected.Bind("hosted"), new RunOptions { Name = "injected" });
        using var host = builder.Build();

        await host.StartAsync().WaitAsync(Bound);
        var client = host.Services.GetRequiredService<IServeClient>();
        Assert.Equal(5 * 10 + 5 + 1, await client.GetHandle<DriverHandle>("Driver").CallAsync(5));
        Assert.Equal("hosted injected/Injected 12:00", await client.GetHandle<InjectedHandle>("Injected").CallAsync());
        Assert.Equal(["default", "holder", "injected"], client.GetStatus().Applications.Select(a => a.Name));

        await host.StopAsync().WaitAsync(Bound);
        Assert.Equal(2, probe.Disposed.Count);
        Assert.Empty(client.GetStatus().Applications);
    }
}
