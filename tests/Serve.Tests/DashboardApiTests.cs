using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Serve.Tests;

/// <summary>The admin API's dashboard: its files, and the JSON the page reads (the browser tests are in Serve.Dashboard.Tests).</summary>
public sealed class DashboardApiTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync(string? token = null, bool http = false) => ServeHost.StartAsync(o =>
    {
        o.Http.Enabled = http;
        o.Http.Port = 0;
        o.Admin.Enabled = true;
        o.Admin.Port = 0;
        o.Admin.AccessToken = token;
    }).WaitAsync(Bound);

    private static async Task<JsonNode> AdminJsonAsync(ServeHost serve)
    {
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };
        return JsonNode.Parse(await http.GetStringAsync("/api/serve/applications").WaitAsync(Bound))!;
    }

    [Fact]
    public async Task The_page_its_script_and_styles_load_without_the_token_and_the_data_needs_it()
    {
        await using var serve = await StartAsync(token: "s3cret");
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };

        using var page = await http.GetAsync("/").WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<script src=\"dashboard.js\"", html);
        Assert.Contains("id=\"token-form\"", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", "", StringComparison.Ordinal));
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("connect-src 'self'", csp);

        using var script = await http.GetAsync("/dashboard.js").WaitAsync(Bound);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType!.MediaType);
        Assert.Contains("api/serve/applications", await script.Content.ReadAsStringAsync());
        Assert.DoesNotContain("innerHTML =", await script.Content.ReadAsStringAsync());
        using var styles = await http.GetAsync("/dashboard.css").WaitAsync(Bound);
        Assert.Equal("text/css", styles.Content.Headers.ContentType!.MediaType);

        using var data = await http.GetAsync("/api/serve/applications").WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.Unauthorized, data.StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        using var authorized = await http.GetAsync("/api/serve/applications").WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, authorized.StatusCode);
    }

    [Fact]
    public async Task Admin_json_has_per_deployment_metrics_replica_details_and_failed_requests_with_their_request_ids()
    {
        await using var serve = await StartAsync(http: true);
        await serve.RunAsync(Thrower.Bind(), new RunOptions { Name = "throw", RoutePrefix = "/throw" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        for (var i = 0; i < 3; i++)
        {
            using var ok = await http.PostAsync("/throw", new StringContent("0", Encoding.UTF8, "application/json")).WaitAsync(Bound);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using var failed = await http.PostAsync("/throw", new StringContent("5", Encoding.UTF8, "application/json")).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        var requestId = failed.Headers.GetValues("x-request-id").Single();

        var json = await AdminJsonAsync(serve);

        var deployment = json["applications"]![0]!["deployments"]![0]!;
        Assert.Equal("Thrower", (string)deployment["name"]!);
        Assert.Equal(DeploymentOptions.DefaultMaxOngoingRequests, (int)deployment["max_ongoing_requests"]!);
        Assert.Equal(0, (int)deployment["ongoing_requests"]!);
        Assert.Null(deployment["autoscaling"]);
        Assert.Equal("local", (string)deployment["replicas"]![0]!["node"]!);
        var metrics = deployment["metrics"]!;
        Assert.Equal(5.0, (double)metrics["slot_seconds"]!);
        Assert.Equal(60, metrics["requests_per_second"]!.AsArray().Count);
        var lastMinute = metrics["last_minute"]!;
        Assert.Equal(4, (long)lastMinute["requests"]!);
        Assert.Equal(0.25, (double)lastMinute["error_rate"]!);
        Assert.NotNull(lastMinute["p50_ms"]);
        Assert.True((double)lastMinute["p99_ms"]! >= (double)lastMinute["p50_ms"]!);
        Assert.True((double)metrics["requests_per_second"]!.AsArray()[^1]! > 0, "the slot still filling counts the calls just made");

        var error = Assert.Single(json["recent_errors"]!.AsArray())!;
        Assert.Equal(requestId, (string)error["request_id"]!);
        Assert.Equal("throw", (string)error["application"]!);
        Assert.Equal("Thrower", (string)error["deployment"]!);
        Assert.Equal("POST /throw", $"{error["method"]} {error["path"]}");
        Assert.Equal(500, (int)error["status_code"]!);
        Assert.Equal("KeyNotFoundException: no item 5", (string)error["error"]!);
    }

    [Fact]
    public async Task Admin_json_lists_the_autoscalers_decisions()
    {
        var valve = new Valve();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Held.Bind(valve).WithOptions(o => o.Autoscaling = new AutoscalingOptions
        {
            MinReplicas = 1,
            MaxReplicas = 3,
            TargetOngoingRequests = 1,
            MetricsInterval = TimeSpan.FromMilliseconds(20),
            LookBackPeriod = TimeSpan.FromMilliseconds(100),
            UpscaleDelay = TimeSpan.FromMilliseconds(60),
            DownscaleDelay = TimeSpan.FromHours(1),
        })).WaitAsync(Bound);
        var calls = Enumerable.Range(0, 2).Select(_ => handle.CallAsync().AsTask()).ToArray();
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Held").TargetReplicas == 2, "2 held calls (target 1 each) scale Held to 2");

        var json = await AdminJsonAsync(serve);
        valve.Open.SetResult();
        await Task.WhenAll(calls).WaitAsync(Bound);

        var decision = json["autoscaler_decisions"]!.AsArray().Last()!;
        Assert.Equal("Held", (string)decision["deployment"]!);
        Assert.Equal(1, (int)decision["from_replicas"]!);
        Assert.Equal(2, (int)decision["to_replicas"]!);
        var autoscaling = json["applications"]![0]!["deployments"]![0]!["autoscaling"]!;
        Assert.Equal(3, (int)autoscaling["max_replicas"]!);
    }
}
