using System.Collections.Concurrent;

namespace Serve.Tests;

/// <summary>What the <see cref="Rollout"/> replicas report to a test, and which of them fail their health checks.</summary>
public sealed class RolloutProbe
{
    public ConcurrentDictionary<string, bool> Sick { get; } = new();
    public ConcurrentQueue<string> Disposed { get; } = new();
    /// <summary>A version whose constructor throws from now on (its weights went missing after it started).</summary>
    public volatile string? Refuse;
}

public sealed record RolloutConfig(string Greeting, bool Reject = false);

/// <summary>A deployment whose constructor, health check and reconfigure can each be made to fail.</summary>
[Deployment(NumReplicas = 2)]
public partial class Rollout : IHealthCheckable, IReconfigurable<RolloutConfig>, IDisposable
{
    private readonly RolloutProbe _probe;
    private readonly ReplicaContext _context;
    private readonly string _tag;
    private string _greeting = "unset";

    public Rollout(RolloutProbe probe, string tag, bool fail, ReplicaContext context)
    {
        if (fail || probe.Refuse == tag)
            throw new InvalidDataException($"version {tag} cannot load its weights");
        _probe = probe;
        _tag = tag;
        _context = context;
    }

    public string Call() => $"{_tag}:{_greeting}";

    public ValueTask CheckHealthAsync(CancellationToken cancellationToken) =>
        _probe.Sick.ContainsKey(_context.ReplicaId) ? throw new InvalidOperationException("GPU lost") : default;

    public ValueTask ReconfigureAsync(RolloutConfig config, CancellationToken cancellationToken)
    {
        if (config.Reject)
            throw new ArgumentException($"greeting '{config.Greeting}' is not allowed");
        _greeting = config.Greeting;
        return default;
    }

    public void Dispose() => _probe.Disposed.Enqueue(_context.ReplicaId);
}

/// <summary>Lets a test hold a constructor until it chooses, then make it succeed or throw.</summary>
public sealed class StartGate
{
    public SemaphoreSlim Entered { get; } = new(0);
    public ManualResetEventSlim Open { get; } = new();
}

[Deployment]
public partial class SlowStart
{
    private readonly string _tag;

    public SlowStart(StartGate gate, string tag, bool fail)
    {
        gate.Entered.Release();
        gate.Open.Wait(TimeSpan.FromSeconds(60));
        if (fail)
            throw new InvalidDataException($"version {tag} cannot load its weights");
        _tag = tag;
    }

    public string Call() => _tag;
}

public class FailedDeploymentTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync() =>
        ServeHost.StartAsync(o => { o.ReplicaStartBackoff = TimeSpan.FromMilliseconds(5); o.Http.Enabled = false; });

    private static Application<RolloutHandle> Version(RolloutProbe probe, string tag, bool fail = false, RolloutConfig? config = null) =>
        Rollout.Bind(probe, tag, fail).WithOptions(o =>
        {
            o.Version = tag;
            o.UserConfig = config ?? new RolloutConfig("hello");
            o.HealthCheckPeriod = TimeSpan.FromMilliseconds(20);
        });

    private static string[] ReplicaIds(IServeClient serve, string deployment) =>
        serve.GetDeployment(deployment).Replicas.Select(r => r.ReplicaId).Order().ToArray();

    /// <summary>True once every replica the test saw has been replaced, and as many run as before, all serving <paramref name="version"/>.</summary>
    private static bool ReplacedWith(IServeClient serve, string[] dead, string version)
    {
        var replicas = serve.GetDeployment("Rollout").Replicas;
        return replicas.Count == dead.Length
            && replicas.All(r => r.State == ReplicaState.Running && r.Version == version && !dead.Contains(r.ReplicaId));
    }

    [Fact]
    public async Task After_a_failed_rollout_replicas_that_fail_health_checks_are_replaced_with_the_serving_version()
    {
        var probe = new RolloutProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Version(probe, "v1")).WaitAsync(Bound);
        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Version(probe, "v2", fail: true)).WaitAsync(Bound));
        Assert.Contains("version v2 cannot load its weights", error.Message);
        var serving = ReplicaIds(serve, "Rollout");
        Assert.Equal(2, serving.Length);

        foreach (var id in serving)
            probe.Sick[id] = true;
        await TestUtil.WaitUntilAsync(() => ReplacedWith(serve, serving, "v1"), "both sick v1 replicas are replaced by v1 replicas", seconds: 20);

        Assert.Equal("v1:hello", await handle.CallAsync().AsTask().WaitAsync(Bound));
        var info = serve.GetDeployment("Rollout");
        Assert.Equal("v2", info.Version); // the spec asks for v2 ...
        Assert.Equal(ServeHealth.Unhealthy, info.Status); // ... which failed, and the status still says so
        Assert.Contains("version v2 cannot load its weights", info.Message);
        Assert.True(info.Restarts >= 2);
    }

    [Fact]
    public async Task After_a_failed_reconfigure_replicas_that_fail_health_checks_are_replaced_with_the_config_they_served()
    {
        var probe = new RolloutProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Version(probe, "v1")).WaitAsync(Bound);
        var error = await Assert.ThrowsAsync<DeploymentFailedException>(
            () => serve.RunAsync(Version(probe, "v1", config: new RolloutConfig("bonjour", Reject: true))).WaitAsync(Bound));
        Assert.Contains("greeting 'bonjour' is not allowed", error.Message);
        Assert.Contains("'Rollout'", error.Message);
        var serving = ReplicaIds(serve, "Rollout");

        foreach (var id in serving)
            probe.Sick[id] = true;
        await TestUtil.WaitUntilAsync(() => ReplacedWith(serve, serving, "v1"), "both sick replicas are replaced", seconds: 20);

        for (var i = 0; i < 4; i++)
            Assert.Equal("v1:hello", await handle.CallAsync().AsTask().WaitAsync(Bound));
        Assert.Equal(ServeHealth.Unhealthy, serve.GetDeployment("Rollout").Status);

        // A config that works recovers the deployment in place.
        await serve.RunAsync(Version(probe, "v1", config: new RolloutConfig("salut"))).WaitAsync(Bound);
        Assert.Equal("v1:salut", await handle.CallAsync().AsTask().WaitAsync(Bound));
        Assert.Equal(ServeHealth.Healthy, serve.GetDeployment("Rollout").Status);
    }

    [Fact]
    public async Task When_the_serving_version_cannot_be_restarted_either_calls_fail_at_once_with_both_reasons()
    {
        var probe = new RolloutProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Version(probe, "v1")).WaitAsync(Bound);
        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Version(probe, "v2", fail: true)).WaitAsync(Bound));
        var serving = ReplicaIds(serve, "Rollout");

        probe.Refuse = "v1";
        foreach (var id in serving)
            probe.Sick[id] = true;
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Rollout").Replicas.Count == 0, "the sick replicas stop and no replacement starts");

        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => handle.CallAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("Rollout", error.DeploymentName);
        Assert.Contains("version v2 cannot load its weights", error.Message);
        Assert.Contains("Replacing its serving version's replicas failed too (3 time(s) in a row, last: InvalidDataException: version v1 cannot load its weights)", error.Message);
        Assert.Contains("Replacing its serving version's replicas failed too", serve.GetDeployment("Rollout").Message);
    }

    [Fact]
    public async Task Deleting_an_application_whose_rollout_failed_stops_the_replicas_still_serving()
    {
        var probe = new RolloutProbe();
        await using var serve = await StartAsync();
        await serve.RunAsync(Version(probe, "v1")).WaitAsync(Bound);
        var serving = ReplicaIds(serve, "Rollout");
        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Version(probe, "v2", fail: true)).WaitAsync(Bound));

        await serve.DeleteAsync("default").WaitAsync(Bound);

        Assert.Empty(serve.GetStatus().Applications);
        Assert.Equal(serving, probe.Disposed.Order());
    }

    [Fact]
    public async Task A_failed_deployment_without_replicas_fails_calls_at_once_with_the_reason()
    {
        await using var serve = await StartAsync();
        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Broken.Bind(), new RunOptions { Name = "bad" }).WaitAsync(Bound));

        var typed = serve.GetHandle<BrokenHandle>("Broken", "bad");
        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => typed.CallAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("bad", error.ApplicationName);
        Assert.Equal("Broken", error.DeploymentName);
        Assert.Contains("Deployment 'Broken' of application 'bad' failed to start", error.Message);
        Assert.Contains("model file weights.bin is missing", error.Message);
        Assert.IsType<InvalidOperationException>(error.InnerException);

        var untyped = serve.GetHandle("Broken", "bad");
        var untypedError = await Assert.ThrowsAsync<DeploymentFailedException>(() => untyped.InvokeCallAsync([]).AsTask().WaitAsync(Bound));
        Assert.Contains("model file weights.bin is missing", untypedError.Message);
    }

    [Fact]
    public async Task Over_HTTP_a_failed_deployment_without_replicas_answers_503_with_the_reason_at_once()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Port = 0; o.ReplicaStartBackoff = TimeSpan.Zero; }).WaitAsync(Bound);
        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Broken.Bind(), new RunOptions { Name = "bad", RoutePrefix = "/bad" }).WaitAsync(Bound));
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        using var response = await http.GetAsync("/bad").WaitAsync(Bound);

        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("Deployment 'Broken' of application 'bad' failed to start", body);
        Assert.Contains("model file weights.bin is missing", body);
    }

    [Fact]
    public async Task Calls_waiting_for_a_deployment_that_then_fails_fail_with_the_reason()
    {
        var gate = new StartGate();
        await using var serve = await StartAsync();
        var run = serve.RunAsync(SlowStart.Bind(gate, "v1", true), new RunOptions { Name = "bad" });
        Assert.True(await gate.Entered.WaitAsync(Bound), "the constructor runs");

        var typed = serve.GetHandle<SlowStartHandle>("SlowStart", "bad");
        var untyped = serve.GetHandle("SlowStart", "bad");
        var queued = new[] { typed.CallAsync().AsTask(), untyped.InvokeCallAsync([]).AsTask().ContinueWith(t => (string)t.Result!) };
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("SlowStart", "bad").QueuedRequests == 2, "both calls queue");
        Assert.All(queued, t => Assert.False(t.IsCompleted));

        gate.Open.Set();
        await Assert.ThrowsAsync<DeploymentFailedException>(() => run.WaitAsync(Bound));
        foreach (var call in queued)
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => call.WaitAsync(Bound));
            var failed = Assert.IsType<DeploymentFailedException>(error is AggregateException agg ? agg.InnerException : error);
            Assert.Contains("version v1 cannot load its weights", failed.Message);
            Assert.Equal("SlowStart", failed.DeploymentName);
        }
    }

    [Fact]
    public async Task Redeploying_a_fixed_version_after_calls_failed_fast_serves_again()
    {
        var gate = new StartGate();
        gate.Open.Set();
        await using var serve = await StartAsync();
        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(SlowStart.Bind(gate, "v1", true)).WaitAsync(Bound));
        var handle = serve.GetHandle<SlowStartHandle>("SlowStart");
        await Assert.ThrowsAsync<DeploymentFailedException>(() => handle.CallAsync().AsTask().WaitAsync(Bound));

        await serve.RunAsync(SlowStart.Bind(gate, "v2", false)).WaitAsync(Bound);

        Assert.Equal("v2", await handle.CallAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task Redeploying_the_serving_version_after_a_failed_rollout_keeps_its_replicas()
    {
        var probe = new RolloutProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Version(probe, "v1")).WaitAsync(Bound);
        var serving = ReplicaIds(serve, "Rollout");
        await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Version(probe, "v2", fail: true)).WaitAsync(Bound));

        await serve.RunAsync(Version(probe, "v1")).WaitAsync(Bound);

        Assert.Equal(serving, ReplicaIds(serve, "Rollout"));
        Assert.Empty(probe.Disposed);
        var info = serve.GetDeployment("Rollout");
        Assert.Equal(ServeHealth.Healthy, info.Status);
        Assert.Equal("v1", info.Version);
        Assert.Equal("", info.Message);
        Assert.Equal("v1:hello", await handle.CallAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_RunAsync_overtaken_by_a_later_one_says_so_instead_of_reporting_success()
    {
        var gate = new StartGate();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(SlowStart.Bind(new StartGate().Opened(), "v1", false).WithOptions(o => o.Version = "v1")).WaitAsync(Bound);
        var first = serve.RunAsync(SlowStart.Bind(gate, "v2", false).WithOptions(o => o.Version = "v2"));
        Assert.True(await gate.Entered.WaitAsync(Bound), "v2's constructor runs");

        var second = serve.RunAsync(SlowStart.Bind(new StartGate().Opened(), "v3", false).WithOptions(o => o.Version = "v3"));

        var error = await Assert.ThrowsAsync<ApplicationSupersededException>(() => first.WaitAsync(Bound));
        Assert.Equal("default", error.ApplicationName);
        Assert.Contains("Application 'default' was redeployed by a later RunAsync", error.Message);
        Assert.Contains("SlowStart v3", error.Message);
        Assert.Contains("SlowStart v2", error.Message);
        gate.Open.Set();
        await second.WaitAsync(Bound);
        Assert.Equal("v3", await handle.CallAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("v3", serve.GetDeployment("SlowStart").Version);
    }

    [Fact]
    public async Task Two_overlapping_RunAsync_calls_of_the_same_application_both_succeed()
    {
        var gate = new StartGate();
        await using var serve = await StartAsync();
        var app = SlowStart.Bind(gate, "v1", false);
        var first = serve.RunAsync(app);
        Assert.True(await gate.Entered.WaitAsync(Bound), "the constructor runs");
        var second = serve.RunAsync(app);

        gate.Open.Set();

        foreach (var handle in await Task.WhenAll(first, second).WaitAsync(Bound))
            Assert.Equal("v1", await handle.CallAsync().AsTask().WaitAsync(Bound));
    }
}

internal static class StartGateExtensions
{
    public static StartGate Opened(this StartGate gate)
    {
        gate.Open.Set();
        return gate;
    }
}
