using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serve.Tests.Observability;

namespace Serve.Tests;

public class ObservabilityTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync(Action<ServeOptions>? more = null) => ServeHost.StartAsync(o =>
    {
        o.Http.Enabled = false;
        o.Admin.Enabled = true;
        o.Admin.Port = 0;
        more?.Invoke(o);
    }).WaitAsync(Bound);

    private static async Task<string> ScrapeAsync(ServeHost serve)
    {
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };
        using var response = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The sum of every sample of <paramref name="metric"/> whose label set contains all <paramref name="labels"/>.</summary>
    private static double Sum(string text, string metric, params string[] labels) =>
        Samples(text, metric, labels).Sum(s => s.Value);

    private static List<(string Line, double Value)> Samples(string text, string metric, params string[] labels) =>
        text.Split('\n')
            .Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal) && labels.All(l.Contains))
            .Select(l => (l, double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
            .ToList();

    private static string App() => "m" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task Metrics_endpoint_counts_requests_errors_latency_and_replica_starts_per_replica()
    {
        var app = App();
        await using var serve = await StartAsync();
        var scored = await serve.RunAsync(Scored.Bind().WithOptions(o => o.NumReplicas = 2), new RunOptions { Name = app }).WaitAsync(Bound);
        var mine = $"application=\"{app}\",deployment=\"Scored\"";

        var before = await ScrapeAsync(serve);
        Assert.Equal(2, Samples(before, "serve_deployment_replica_starts_total", mine).Count);
        Assert.Equal(2, Sum(before, "serve_deployment_replica_starts_total", mine));
        Assert.Equal(2, Sum(before, "serve_deployment_replica_healthy", mine));
        Assert.Equal(0, Sum(before, "serve_deployment_requests_total", mine));

        for (var i = 0; i < 5; i++)
            Assert.Equal(i + 1, await scored.ScoreAsync(i));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await scored.BoomAsync(1));
        Assert.Equal(4, (int)(await serve.GetHandle("Scored", app).InvokeAsync("Score", [3]))!);   // the untyped path counts too

        var after = await ScrapeAsync(serve);
        Assert.Contains("# TYPE serve_deployment_requests_total counter", after.Split('\n'));
        Assert.Contains("# TYPE serve_deployment_processing_latency_ms histogram", after.Split('\n'));
        Assert.Equal(7, Sum(after, "serve_deployment_requests_total", mine));
        Assert.Equal(1, Sum(after, "serve_deployment_errors_total", mine));
        Assert.Equal(7, Sum(after, "serve_deployment_processing_latency_ms_count", mine));
        Assert.Equal(7, Sum(after, "serve_deployment_processing_latency_ms_bucket", mine, "le=\"+Inf\""));
        Assert.True(Sum(after, "serve_deployment_processing_latency_ms_sum", mine) >= 0);
        // Each sample names its replica: Scored#xxxx.
        Assert.All(Samples(after, "serve_deployment_requests_total", mine), s => Assert.Matches("replica=\"Scored#[0-9a-f]{4}\"", s.Line));

        await scored.ScoreAsync(1);
        Assert.Equal(8, Sum(await ScrapeAsync(serve), "serve_deployment_requests_total", mine));
    }

    [Fact]
    public async Task Ongoing_and_queued_gauges_show_live_load()
    {
        var app = App();
        var key = Guid.NewGuid().ToString("N");
        await using var serve = await StartAsync();
        var holder = await serve.RunAsync(Gated.Bind(), new RunOptions { Name = app }).WaitAsync(Bound);
        var mine = $"application=\"{app}\",deployment=\"Gated\"";

        var first = holder.HoldAsync(key).AsTask();
        await Gated.Entry(key).Task.WaitAsync(Bound);
        var second = holder.HoldAsync(key).AsTask();          // MaxOngoingRequests = 1: this one waits in the queue
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Gated", app).QueuedRequests == 1, "the second call is queued");

        var busy = await ScrapeAsync(serve);
        Assert.Equal(1, Sum(busy, "serve_replica_ongoing_requests", mine));
        Assert.Equal(1, Sum(busy, "serve_deployment_queued_requests", mine));

        Gated.Gate(key).TrySetResult();
        Assert.Equal(1, await first.WaitAsync(Bound));
        Assert.Equal(1, await second.WaitAsync(Bound));
        var idle = await ScrapeAsync(serve);
        Assert.Equal(0, Sum(idle, "serve_replica_ongoing_requests", mine));
        Assert.Equal(0, Sum(idle, "serve_deployment_queued_requests", mine));
        Assert.Equal(2, Sum(idle, "serve_deployment_requests_total", mine));
    }

    [Fact]
    public async Task A_MeterListener_sees_meter_Serve_with_application_deployment_and_replica_tags()
    {
        var app = App();
        var seen = new ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Serve")
                    l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();

        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var scored = await serve.RunAsync(Scored.Bind(), new RunOptions { Name = app }).WaitAsync(Bound);
        await scored.ScoreAsync(1);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await scored.BoomAsync(1));

        var replica = Assert.Single(serve.GetDeployment("Scored", app).Replicas).ReplicaId;
        var mine = seen.Where(m => Equals(m.Tags.GetValueOrDefault("application"), app)).ToList();
        Assert.Equal(2, mine.Count(m => m.Instrument == "serve.deployment.requests"));
        Assert.Equal(1, mine.Count(m => m.Instrument == "serve.deployment.errors"));
        Assert.Equal(2, mine.Count(m => m.Instrument == "serve.deployment.processing_latency"));
        Assert.Single(mine, m => m.Instrument == "serve.deployment.replica_starts");
        Assert.All(mine, m =>
        {
            Assert.Equal("Scored", m.Tags["deployment"]);
            Assert.Equal(replica, m.Tags["replica"]);
        });

        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) =>
            seen.Enqueue((instrument.Name, value, new Dictionary<string, object?>(tags.ToArray())));
    }

    [Fact]
    public async Task Http_requests_are_counted_and_logged_with_request_id_deployment_replica_duration_and_status()
    {
        var app = App();
        var logs = new CapturingLoggerProvider();
        var services = new ServiceCollection().AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Information)).BuildServiceProvider();
        await using var serve = await StartAsync(o =>
        {
            o.Http.Enabled = true;
            o.Http.Port = 0;
            o.Services = services;
        });
        await serve.RunAsync(Scored.Bind(), new RunOptions { Name = app, RoutePrefix = "/scored" }).WaitAsync(Bound);
        var replica = Assert.Single(serve.GetDeployment("Scored", app).Replicas).ReplicaId;
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        using var request = new HttpRequestMessage(HttpMethod.Post, "/scored") { Content = new StringContent("21", Encoding.UTF8, "application/json") };
        request.Headers.Add("x-request-id", "req-" + app);
        using var ok = await http.SendAsync(request);
        Assert.Equal("42", await ok.Content.ReadAsStringAsync());
        using var bad = await http.PostAsync("/scored", new StringContent("\"x\"", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var line = Assert.Single(logs.Lines, l => l.Category == "Serve.Access" && l.Message.Contains("req-" + app)).Message;
        Assert.StartsWith("POST /scored 200 ", line);
        Assert.Matches(@" 200 \d+(\.\d+)? ms request req-", line);
        Assert.Contains($"application {app} deployment Scored replica {replica}", line);
        Assert.Single(logs.Lines, l => l.Category == "Serve.Access" && l.Message.StartsWith("POST /scored 400 ", StringComparison.Ordinal) && l.Message.Contains(app));

        var text = await ScrapeAsync(serve);
        var mine = $"application=\"{app}\"";
        Assert.Equal(1, Sum(text, "serve_http_requests_total", mine, "method=\"POST\"", "route=\"/scored\"", "status_code=\"200\""));
        Assert.Equal(1, Sum(text, "serve_http_requests_total", mine, "status_code=\"400\""));
        Assert.Equal(1, Sum(text, "serve_http_errors_total", mine));
        Assert.Equal(2, Sum(text, "serve_http_request_latency_ms_count", mine));
    }

    [Fact]
    public async Task A_stream_counts_as_failed_only_when_its_producer_throws()
    {
        var app = App();
        await using var serve = await StartAsync();
        var ticker = await serve.RunAsync(Ticker.Bind(), new RunOptions { Name = app }).WaitAsync(Bound);
        var mine = $"application=\"{app}\",deployment=\"Ticker\"";

        var all = new List<int>();
        await foreach (var i in ticker.TicksAsync(3, failAtEnd: false))
            all.Add(i);
        Assert.Equal([0, 1, 2], all);
        await foreach (var i in ticker.TicksAsync(100, failAtEnd: true))
        {
            if (i == 1)
                break;                                                  // the consumer stops early: not an error
        }
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var _ in ticker.TicksAsync(2, failAtEnd: true))
            {
            }
        });
        Assert.Equal("ticker broke", error.Message);

        var text = await ScrapeAsync(serve);
        Assert.Equal(3, Sum(text, "serve_deployment_requests_total", mine));
        Assert.Equal(1, Sum(text, "serve_deployment_errors_total", mine));
        Assert.Equal(0, Sum(text, "serve_replica_ongoing_requests", mine));
    }

    [Fact]
    public async Task Metrics_endpoint_requires_the_admin_access_token_when_one_is_set()
    {
        await using var serve = await StartAsync(o => o.Admin.AccessToken = "s3cret");
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };

        using var anonymous = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "s3cret");
        using var authorized = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, authorized.StatusCode);
        Assert.StartsWith("text/plain; version=0.0.4", authorized.Content.Headers.ContentType!.ToString());

        using var post = new HttpRequestMessage(HttpMethod.Post, "/metrics");
        post.Headers.Authorization = request.Headers.Authorization;
        using var notAllowed = await http.SendAsync(post);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, notAllowed.StatusCode);
    }

    [Fact]
    public async Task Health_check_failures_and_the_replacement_replica_show_in_the_metrics()
    {
        var app = App();
        var probe = new HealthProbe();
        await using var serve = await StartAsync();
        await serve.RunAsync(Checked.Bind(probe, new Valve()).WithOptions(o => o.HealthCheckPeriod = TimeSpan.FromMilliseconds(20)), new RunOptions { Name = app }).WaitAsync(Bound);
        var sick = Assert.Single(serve.GetDeployment("Checked", app).Replicas).ReplicaId;
        var mine = $"application=\"{app}\",deployment=\"Checked\"";
        Assert.Equal(1, Sum(await ScrapeAsync(serve), "serve_deployment_replica_healthy", mine, $"replica=\"{sick}\""));

        probe.Unhealthy = sick;
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Checked", app).Replicas.Any(r => r.ReplicaId != sick && r.State == ReplicaState.Running),
            "a replacement runs");

        var text = await ScrapeAsync(serve);
        Assert.Equal(3, Sum(text, "serve_deployment_health_check_failures_total", mine, $"replica=\"{sick}\""));
        Assert.Equal(2, Sum(text, "serve_deployment_replica_starts_total", mine));
        var replacement = serve.GetDeployment("Checked", app).Replicas.Single(r => r.ReplicaId != sick).ReplicaId;
        Assert.Equal(1, Sum(text, "serve_deployment_replica_healthy", mine, $"replica=\"{replacement}\""));
        Assert.Empty(Samples(text, "serve_deployment_replica_healthy", mine, $"replica=\"{sick}\""));
    }

    [Fact]
    public async Task The_autoscaling_target_is_a_gauge_for_autoscaled_deployments_only()
    {
        var app = App();
        await using var serve = await StartAsync();
        await serve.RunAsync(Held.Bind(new Valve()).WithOptions(o => o.Autoscaling = new AutoscalingOptions { MinReplicas = 2, MaxReplicas = 3 }),
            new RunOptions { Name = app }).WaitAsync(Bound);
        await serve.RunAsync(Scored.Bind(), new RunOptions { Name = app + "fixed", RoutePrefix = "/fixed" }).WaitAsync(Bound);

        var text = await ScrapeAsync(serve);
        Assert.Equal(2, Sum(text, "serve_autoscaling_target_replicas", $"application=\"{app}\",deployment=\"Held\""));
        Assert.Empty(Samples(text, "serve_autoscaling_target_replicas", $"application=\"{app}fixed\""));
    }
}
