using System.Net;
using System.Text;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Serve.Dashboard.Tests;

[Deployment]
public partial class Greeting(string text)
{
    public string Call() => text;
}

public sealed class Gate
{
    public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

[Deployment(MaxOngoingRequests = 100)]
public partial class Summarizer(Gate gate)
{
    public async Task<string> Call()
    {
        await gate.Open.Task;
        return "summary";
    }
}

[Deployment]
public partial class Ranker
{
    public int Call(int x) => x > 0 ? throw new InvalidOperationException($"model rejected input {x}") : x;
}

[Deployment]
public partial class Embedder
{
    public Embedder() => throw new FileNotFoundException("model file embedder.onnx is missing");

    public int Call() => 1;
}

/// <summary>
/// The dashboard in headless Chromium against a real host. With SERVE_DASHBOARD_SCREENSHOTS set to a folder, the
/// healthy and failing pages are also saved there (docs/images/ for docs/dashboard.md), after some traffic for the charts.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class DashboardPageTests(BrowserFixture browser)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string? ScreenshotDir = Environment.GetEnvironmentVariable("SERVE_DASHBOARD_SCREENSHOTS") is { Length: > 0 } dir ? dir : null;

    private static Task<ServeHost> StartAsync(string? token = null) => ServeHost.StartAsync(o =>
    {
        o.Http.Port = 0;
        o.Admin.Enabled = true;
        o.Admin.Port = 0;
        o.Admin.AccessToken = token;
    }).WaitAsync(Bound);

    private async Task<(IPage Page, List<string> Problems)> OpenAsync(ServeHost serve)
    {
        var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout((float)Bound.TotalMilliseconds);
        // Script errors and refused loads (a CSP violation, a missing file) are failures of the page.
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
                problems.Add($"{message.Text} ({message.Location})");
        };
        page.PageError += (_, error) => problems.Add(error);
        await page.GotoAsync(serve.AdminAddress!.ToString());
        return (page, problems);
    }

    private static async Task ScreenshotAsync(IPage page, string name)
    {
        if (ScreenshotDir is null)
            return;
        Directory.CreateDirectory(ScreenshotDir);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDir, name), FullPage = true });
    }

    /// <summary>Screenshot mode only: requests for a while, so the charts have some slots to draw.</summary>
    private static async Task TrafficAsync(ServeHost serve, string path, Func<int, string?> body, TimeSpan duration)
    {
        if (ScreenshotDir is null)
            return;
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        var end = DateTime.UtcNow + duration;
        for (var i = 0; DateTime.UtcNow < end; i++)
        {
            using var _ = body(i) is { } json
                ? await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"))
                : await http.GetAsync(path);
            await Task.Delay(20 + (int)(30 * (1 + Math.Sin(i / 40.0))));
        }
    }

    [BrowserFact]
    public async Task The_page_shows_a_deployed_app_and_a_scale_up_without_reload()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeting.Bind("Hello!"), new RunOptions { Name = "hello", RoutePrefix = "/hello" }).WaitAsync(Bound);
        var gate = new Gate();
        var summarizer = await serve.RunAsync(Summarizer.Bind(gate).WithOptions(o => o.Autoscaling = new AutoscalingOptions
        {
            MinReplicas = 1,
            MaxReplicas = 4,
            TargetOngoingRequests = 1,
            MetricsInterval = TimeSpan.FromMilliseconds(50),
            LookBackPeriod = TimeSpan.FromMilliseconds(200),
            UpscaleDelay = TimeSpan.FromMilliseconds(100),
            DownscaleDelay = TimeSpan.FromHours(1),
        }), new RunOptions { Name = "summarize", RoutePrefix = "/summarize" }).WaitAsync(Bound);
        var (page, problems) = await OpenAsync(serve);

        var hello = page.Locator("[data-application=hello]");
        await Expect(hello.Locator("h2")).ToContainTextAsync("hello/helloHEALTHY");
        await Expect(hello.Locator("tr[data-deployment='hello/Greeting'] td.replicas")).ToHaveTextAsync("1/1");
        await Expect(hello.Locator("tr.replica")).ToHaveCountAsync(1);
        await Expect(hello.Locator("tr.replica").First).ToContainTextAsync("RUNNING");
        var summarize = page.Locator("tr[data-deployment='summarize/Summarizer']");
        await Expect(summarize.Locator("td.replicas")).ToHaveTextAsync("1/1 (autoscaling 1–4)");
        await page.EvaluateAsync("window.servePageMark = 'still the same page'");

        // Two calls held open: the autoscaler (target 1 per replica) scales Summarizer to 2; the page follows.
        var calls = Enumerable.Range(0, 2).Select(_ => summarizer.CallAsync().AsTask()).ToArray();
        await Expect(summarize.Locator("td.replicas")).ToHaveTextAsync("2/2 (autoscaling 1–4)");
        await Expect(page.Locator("[data-application=summarize] tr.replica")).ToHaveCountAsync(2);
        await Expect(page.Locator("#decisions tbody tr").First).ToContainTextAsync("summarize / Summarizer1 → 2");
        Assert.Equal("still the same page", await page.EvaluateAsync<string>("window.servePageMark"));

        await TrafficAsync(serve, "/hello", _ => null, TimeSpan.FromSeconds(45));
        await ScreenshotAsync(page, "dashboard-healthy.png");
        gate.Open.SetResult();
        await Task.WhenAll(calls).WaitAsync(Bound);
        Assert.Empty(problems);
    }

    [BrowserFact]
    public async Task A_failed_request_shows_its_request_id_and_a_failed_deployment_its_reason()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Ranker.Bind(), new RunOptions { Name = "rank", RoutePrefix = "/rank" }).WaitAsync(Bound);
        var failure = await Assert.ThrowsAsync<DeploymentFailedException>(() =>
            serve.RunAsync(Embedder.Bind(), new RunOptions { Name = "embed", RoutePrefix = "/embed" }).WaitAsync(Bound));
        var (page, problems) = await OpenAsync(serve);
        await Expect(page.Locator("#errors tbody")).ToContainTextAsync("No failed requests.");

        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        using var answer = await http.PostAsync("/rank", new StringContent("7", Encoding.UTF8, "application/json")).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.InternalServerError, answer.StatusCode);
        var requestId = answer.Headers.GetValues("x-request-id").Single();
        Assert.Contains(requestId, await answer.Content.ReadAsStringAsync());

        var row = page.Locator($"#errors tr[data-request-id='{requestId}']");
        await Expect(row).ToContainTextAsync(requestId);
        await Expect(row).ToContainTextAsync("rank / Ranker");
        await Expect(row).ToContainTextAsync("POST /rank");
        await Expect(row).ToContainTextAsync("InvalidOperationException: model rejected input 7");

        var embed = page.Locator("[data-application=embed]");
        await Expect(embed.Locator("tr[data-deployment='embed/Embedder'] td.status")).ToHaveTextAsync("UNHEALTHY");
        await Expect(embed.Locator("tr.reason")).ToContainTextAsync("failed to start: its replica threw FileNotFoundException");
        Assert.Contains("embedder.onnx", failure.Message);

        await TrafficAsync(serve, "/rank", i => i % 7 == 3 ? "1" : "0", TimeSpan.FromSeconds(30));
        await ScreenshotAsync(page, "dashboard-failing.png");
        Assert.Empty(problems);
    }

    [BrowserFact]
    public async Task With_an_access_token_the_page_asks_for_it_before_showing_anything()
    {
        await using var serve = await StartAsync(token: "let-me-in");
        await serve.RunAsync(Greeting.Bind("Hi"), new RunOptions { Name = "hello", RoutePrefix = "/hello" }).WaitAsync(Bound);
        var (page, problems) = await OpenAsync(serve);

        await Expect(page.Locator("#token-form")).ToBeVisibleAsync();
        await Expect(page.Locator("[data-application=hello]")).ToHaveCountAsync(0);
        await page.FillAsync("#token", "wrong");
        await page.ClickAsync("#token-form button");
        await Expect(page.Locator("#token-error")).ToHaveTextAsync("That token was refused.");

        await page.FillAsync("#token", "let-me-in");
        await page.ClickAsync("#token-form button");
        await Expect(page.Locator("[data-application=hello] td.replicas")).ToHaveTextAsync("1/1");
        await Expect(page.Locator("#token-form")).ToBeHiddenAsync();
        // The browser logs the refused (401) fetches as errors; nothing else may fail.
        Assert.All(problems, p => Assert.Contains("401", p));
    }
}
