namespace Serve.Tests;

public sealed class Valve
{
    public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int Entered;
}

[Deployment(MaxOngoingRequests = 100)]
public partial class Held(Valve valve, ReplicaContext context)
{
    public async Task<string> Call()
    {
        Interlocked.Increment(ref valve.Entered);
        await valve.Open.Task;
        return context.ReplicaId;
    }

    public string Quick() => context.ReplicaId;
}

public sealed class HealthProbe
{
    public volatile string? Unhealthy;
    public int Checks;
    public System.Collections.Concurrent.ConcurrentQueue<string> Disposed { get; } = new();
}

[Deployment]
public partial class Checked(HealthProbe probe, Valve valve, ReplicaContext context) : IHealthCheckable, IDisposable
{
    public ValueTask CheckHealthAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref probe.Checks);
        return probe.Unhealthy == context.ReplicaId ? throw new InvalidOperationException("disk full") : default;
    }

    public string Call() => context.ReplicaId;

    public async Task<string> HoldAsync()
    {
        await valve.Open.Task;
        return context.ReplicaId;
    }

    public void Dispose() => probe.Disposed.Enqueue(context.ReplicaId);
}

/// <summary>No interface: a public CheckHealthAsync of the right shape is found by name; this one never answers.</summary>
[Deployment]
public partial class Hanging(HealthProbe probe, ReplicaContext context)
{
    public Task CheckHealthAsync(CancellationToken cancellationToken) =>
        probe.Unhealthy == context.ReplicaId ? Task.Delay(Timeout.Infinite, CancellationToken.None) : Task.CompletedTask;

    public string Call() => context.ReplicaId;
}

/// <summary>Builders imported by the config-file test below.</summary>
public static class ScalingApps
{
    public static Application<HeldHandle> Held() => Serve.Tests.Held.Bind(new Valve());
}

public class AutoscalingAndHealthTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync() => ServeHost.StartAsync(o => o.Http.Enabled = false);

    private static int Running(IServeClient serve, string deployment) =>
        serve.GetDeployment(deployment).Replicas.Count(r => r.State == ReplicaState.Running);

    private static AutoscalingOptions Fast(int min, int max) => new()
    {
        MinReplicas = min,
        MaxReplicas = max,
        TargetOngoingRequests = 1,
        MetricsInterval = TimeSpan.FromMilliseconds(20),
        LookBackPeriod = TimeSpan.FromMilliseconds(100),
        UpscaleDelay = TimeSpan.FromMilliseconds(60),
        DownscaleDelay = TimeSpan.FromHours(1),
    };

    [Fact]
    public async Task Scales_up_to_the_load_holds_steady_and_scales_down_after_the_delay()
    {
        var valve = new Valve();
        await using var serve = await StartAsync();
        var app = Held.Bind(valve).WithOptions(o => o.Autoscaling = Fast(1, 6));
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        Assert.Equal(1, Running(serve, "Held"));

        var calls = Enumerable.Range(0, 4).Select(_ => handle.CallAsync().AsTask()).ToArray();
        await TestUtil.WaitUntilAsync(() => Running(serve, "Held") == 4, "4 held calls (target 1 each) scale the deployment to 4 replicas");

        // Steady load: 40 metric intervals later the count has not moved (no flapping), and never went past the need.
        for (var i = 0; i < 40; i++)
        {
            await Task.Delay(20);
            var info = serve.GetDeployment("Held");
            Assert.Equal(4, info.TargetReplicas);
            Assert.True(info.Replicas.Count <= 4, $"{info.Replicas.Count} replicas under a steady load of 4");
        }

        valve.Open.SetResult();
        await Task.WhenAll(calls).WaitAsync(Bound);
        Assert.Equal(4, serve.GetDeployment("Held").TargetReplicas); // DownscaleDelay is an hour

        await serve.RunAsync(app.WithOptions(o => o.Autoscaling = Fast(1, 6).With(a => a.DownscaleDelay = TimeSpan.FromMilliseconds(50)))).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Held").Replicas.Count == 1, "no load scales back to MinReplicas once DownscaleDelay passes");
        Assert.Equal(1, serve.GetDeployment("Held").TargetReplicas);
    }

    [Fact]
    public async Task Scaled_to_zero_the_first_call_starts_a_replica_without_waiting_for_a_metrics_interval()
    {
        var valve = new Valve();
        await using var serve = await StartAsync();
        var slow = new AutoscalingOptions
        {
            MinReplicas = 0,
            MaxReplicas = 2,
            MetricsInterval = TimeSpan.FromHours(1),
            LookBackPeriod = TimeSpan.FromHours(1),
            UpscaleDelay = TimeSpan.FromHours(1),
        };
        var handle = await serve.RunAsync(Held.Bind(valve).WithOptions(o => o.Autoscaling = slow)).WaitAsync(Bound);
        Assert.Empty(serve.GetDeployment("Held").Replicas);
        Assert.Equal(ServeHealth.Healthy, serve.GetDeployment("Held").Status);

        var id = await handle.QuickAsync().AsTask().WaitAsync(Bound);

        Assert.Equal(id, serve.GetDeployment("Held").Replicas.Single().ReplicaId);
        Assert.Equal(1, serve.GetDeployment("Held").TargetReplicas);
    }

    [Fact]
    public void Autoscaling_options_out_of_range_name_the_option()
    {
        var app = Held.Bind(new Valve());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.Autoscaling = new AutoscalingOptions { MinReplicas = 3, MaxReplicas = 2 }));
        Assert.StartsWith("Deployment 'Held': option Autoscaling.MaxReplicas = 2 is out of range: it must be at least 1 and at least MinReplicas (3).", e.Message);
        Assert.StartsWith("Deployment 'Held': option Autoscaling.TargetOngoingRequests = 0 is out of range",
            Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.Autoscaling = new AutoscalingOptions { TargetOngoingRequests = 0 })).Message);
        Assert.StartsWith("Deployment 'Held': option HealthCheckPeriod = 00:00:00 is out of range: it must be positive and at most 49 days (the default is 10 s).",
            Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.HealthCheckPeriod = TimeSpan.Zero)).Message);
    }

    [Fact]
    public void Time_options_longer_than_a_timer_can_wait_are_refused_with_the_option_named()
    {
        // .NET timers (PeriodicTimer, Task.Delay, WaitAsync) take at most ~49.7 days; longer values used to fail later,
        // inside the controller's background loops, instead of here.
        var app = Held.Bind(new Valve());
        var tooLong = TimeSpan.FromDays(50);
        Assert.StartsWith("Deployment 'Held': option GracefulShutdownTimeout = 50.00:00:00 is out of range: it must be 0 or more and at most 49 days",
            Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.GracefulShutdownTimeout = tooLong)).Message);
        Assert.StartsWith("Deployment 'Held': option HealthCheckPeriod = 50.00:00:00 is out of range",
            Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.HealthCheckPeriod = tooLong)).Message);
        Assert.StartsWith("Deployment 'Held': option HealthCheckTimeout = 50.00:00:00 is out of range",
            Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.HealthCheckTimeout = tooLong)).Message);
        Assert.StartsWith("Deployment 'Held': option Autoscaling.MetricsInterval = 50.00:00:00 is out of range: it must be positive and at most 49 days",
            Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o => o.Autoscaling = new AutoscalingOptions { MetricsInterval = tooLong, LookBackPeriod = tooLong })).Message);
        // 49 days is still a valid grace period.
        app.WithOptions(o => o.GracefulShutdownTimeout = TimeSpan.FromDays(49));
    }

    [Fact]
    public async Task A_replica_that_fails_three_health_checks_is_replaced_while_its_in_flight_call_finishes()
    {
        var probe = new HealthProbe();
        var valve = new Valve();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Checked.Bind(probe, valve).WithOptions(o => o.HealthCheckPeriod = TimeSpan.FromMilliseconds(20))).WaitAsync(Bound);
        var sick = serve.GetDeployment("Checked").Replicas.Single().ReplicaId;
        await TestUtil.WaitUntilAsync(() => Volatile.Read(ref probe.Checks) >= 2, "health checks run every period");
        var inFlight = handle.HoldAsync().AsTask();

        probe.Unhealthy = sick;
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Checked").Replicas.Any(r => r.ReplicaId != sick && r.State == ReplicaState.Running),
            "a replacement runs");

        Assert.NotEqual(sick, await handle.CallAsync()); // no new call goes to the sick replica
        Assert.False(inFlight.IsCompleted);
        valve.Open.SetResult();
        Assert.Equal(sick, await inFlight.WaitAsync(Bound)); // the call it was running finished
        await TestUtil.WaitUntilAsync(() => probe.Disposed.Contains(sick), "the sick replica is disposed after it drained");
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Checked").Status == ServeHealth.Healthy, "the deployment is healthy again with its replacement");
        var info = serve.GetDeployment("Checked");
        Assert.Equal(1, info.Restarts);
        Assert.Equal($"1 replica(s) replaced after failing health checks; last: replica {sick} failed 3 health checks in a row (InvalidOperationException: disk full)", info.Message);
        Assert.Equal(sick, Assert.Single(probe.Disposed));
    }

    [Fact]
    public async Task A_health_check_that_does_not_answer_within_the_timeout_fails()
    {
        var probe = new HealthProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Hanging.Bind(probe).WithOptions(o =>
        {
            o.HealthCheckPeriod = TimeSpan.FromMilliseconds(20);
            o.HealthCheckTimeout = TimeSpan.FromMilliseconds(30);
        })).WaitAsync(Bound);
        var sick = serve.GetDeployment("Hanging").Replicas.Single().ReplicaId;

        probe.Unhealthy = sick;
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Hanging").Restarts == 1 && Running(serve, "Hanging") == 1 &&
                                            serve.GetDeployment("Hanging").Replicas.All(r => r.ReplicaId != sick), "the hanging replica is replaced");

        Assert.NotEqual(sick, await handle.CallAsync());
        Assert.EndsWith("(TimeoutException: CheckHealthAsync did not complete within HealthCheckTimeout (0.03 s).)", serve.GetDeployment("Hanging").Message);
    }
}

public class AutoscalingConfigTests
{
    [Fact]
    public void A_config_file_sets_autoscaling_and_health_checks_with_Ray_keys()
    {
        var dir = Directory.CreateTempSubdirectory("serve-autoscaling-config-").FullName;
        var import = typeof(ScalingApps).Assembly.Location.Replace('\\', '/') + ":Serve.Tests.ScalingApps.Held";
        var path = Path.Combine(dir, "serve.yaml");
        File.WriteAllText(path, $"""
            applications:
              - name: good
                route_prefix: /good
                import: {import}
                deployments:
                  - name: Held
                    health_check_period_s: 5
                    health_check_timeout_s: 2.5
                    autoscaling_config:
                      min_replicas: 0
                      max_replicas: 8
                      target_ongoing_requests: 3
                      upscale_delay_s: 1
                      downscale_delay_s: 60
                      metrics_interval_s: 0.5
                      look_back_period_s: 5
            """);

        var config = Config.ServeConfigLoader.Load(path);

        var options = config.Applications[0].Application.GetOptions();
        Assert.Equal(TimeSpan.FromSeconds(5), options.HealthCheckPeriod);
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.HealthCheckTimeout);
        var a = options.Autoscaling!;
        Assert.Equal((0, 8, null, 3.0), (a.MinReplicas, a.MaxReplicas, a.InitialReplicas, a.TargetOngoingRequests));
        Assert.Equal((1.0, 60.0, 0.5, 5.0), (a.UpscaleDelay.TotalSeconds, a.DownscaleDelay.TotalSeconds, a.MetricsInterval.TotalSeconds, a.LookBackPeriod.TotalSeconds));

        File.WriteAllText(path, $"""
            applications:
              - import: {import}
                deployments:
                  - name: Held
                    health_check_period_s: 0
                    graceful_shutdown_timeout_s: 1e300
                    autoscaling_config: {"{"} min_replicas: 3, max_replicas: 2, smoothing: 1 {"}"}
            """);
        var e = Assert.Throws<Config.ServeConfigException>(() => Config.ServeConfigLoader.Load(path));
        Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].health_check_period_s" && x.Reason == "expected a number of seconds above 0, at most 4294967 (49 days), got 0");
        // Too long for a timer (and for TimeSpan): an error naming the key, not an OverflowException.
        Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].graceful_shutdown_timeout_s" && x.Reason == "expected a number of seconds of 0 or more, at most 4294967 (49 days), got 1E+300");
        Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].autoscaling_config.smoothing" && x.Reason.StartsWith("unknown key"));
        Directory.Delete(dir, recursive: true);
    }
}

internal static class AutoscalingOptionsExtensions
{
    public static AutoscalingOptions With(this AutoscalingOptions options, Action<AutoscalingOptions> change)
    {
        change(options);
        return options;
    }
}
