using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Serve.Tests;

/// <summary>Hostile PUT bodies are answered 400 (or 413) with the reason, and the host keeps answering.</summary>
public sealed class AdminApiHostileInputTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string TestAssembly = typeof(TestApps).Assembly.Location.Replace('\\', '/');

    private static string Import(string method) => $"{TestAssembly}:Serve.Tests.TestApps.{method}";

    private static Task<ServeHost> StartAsync(bool http = false) => ServeHost.StartAsync(o =>
    {
        o.Http.Enabled = http;
        o.Http.Port = 0;
        o.Admin.Enabled = true;
        o.Admin.Port = 0;
    }).WaitAsync(Bound);

    private static async Task<(HttpStatusCode Status, JsonNode Body)> PutAsync(HttpClient http, string text, string contentType)
    {
        // "Expect: 100-continue", as curl sends for a large body: the host refuses an oversized one before it is sent,
        // where a client that writes it all at once finds the connection closed under it.
        using var request = new HttpRequestMessage(HttpMethod.Put, "/api/serve/applications") { Content = new StringContent(text, Encoding.UTF8, contentType) };
        request.Headers.ExpectContinue = true;
        using var response = await http.SendAsync(request).WaitAsync(Bound);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync().WaitAsync(Bound))!);
    }

    public static TheoryData<string, string, string, string> HostileBodies() => new()
    {
        { "deep YAML", new string('[', 100_000), "application/yaml", "nested more than 64 levels deep" },
        { "deep JSON", new string('[', 100_000), "application/json", "nested more than 64 levels deep" },
        { "billion laughs", ConfigLimitsTests.BillionLaughs, "application/yaml", "more than 100,000 values once alias *" },
        { "duplicate YAML key", "applications: []\napplications: []\n", "application/yaml", "applications: key 'applications' appears twice" },
        { "duplicate JSON key", """{ "applications": [], "applications": [] }""", "application/json", "applications: key 'applications' appears twice" },
        { "bad route prefix", $"applications:\n  - name: x\n    route_prefix: /a b\n    import: {Import("HelloDefault")}\n", "application/yaml",
          "applications[0].route_prefix: application \"x\": \"/a b\" is not a route prefix: it holds a space" },
        { "colliding prefixes", $"applications:\n  - name: x\n    import: {Import("HelloDefault")}\n  - name: y\n    import: {Import("HelloDefault")}\n", "application/yaml",
          "applications[1]: application \"y\" would be served under route prefix \"/\" (no route_prefix given), which application \"x\" (applications[0]) already uses" },
        { "absurd replicas", $"applications:\n  - import: {Import("HelloDefault")}\n    deployments:\n      - name: Greeter\n        num_replicas: 2147483647\n", "application/yaml",
          "applications[0].deployments[0].num_replicas: expected an integer of 0 or more, at most 10000, got 2147483647" },
        { "absurd CPUs", $"applications:\n  - import: {Import("HelloDefault")}\n    deployments:\n      - name: Greeter\n        num_cpus: 1e308\n", "application/yaml",
          "applications[0].deployments[0].num_cpus: expected a number of 0 or more, at most 10000, got 1E+308" },
        { "host name", $"http:\n  host: not-an-ip\napplications:\n  - import: {Import("HelloDefault")}\n", "application/yaml", "http.host: expected an IP address" },
    };

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task A_hostile_put_is_answered_400_with_the_reason_and_the_host_keeps_answering(string what, string body, string contentType, string reason)
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeter.Bind("keep"), new RunOptions { Name = "keep", RoutePrefix = "/keep" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };

        var (status, answer) = await PutAsync(http, body, contentType);

        Assert.True(status == HttpStatusCode.BadRequest, $"{what}: {(int)status} {answer.ToJsonString()}");
        Assert.StartsWith("request body: ", (string)answer["message"]!);
        Assert.Contains(reason, (string)answer["message"]!);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/serve/applications").WaitAsync(Bound)).StatusCode);
        Assert.Equal(["keep"], serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal("keep", await serve.GetHandle<GreeterHandle>("Greeter", "keep").CallAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_body_over_4_MiB_is_answered_413_and_the_host_keeps_answering()
    {
        await using var serve = await StartAsync();
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };

        var (status, answer) = await PutAsync(http, "# " + new string('x', Config.ServeConfigLoader.MaxDocumentBytes), "application/yaml");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("Payload too large: a config document may be at most 4194304 bytes (4 MiB); nothing was changed.", (string)answer["message"]!);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/serve/applications").WaitAsync(Bound)).StatusCode);
    }

    [Fact]
    public async Task A_put_that_renames_an_application_may_keep_its_route_prefix()
    {
        await using var serve = await StartAsync(http: true);
        using var admin = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };
        string App(string name, string message) =>
            $"applications:\n  - name: {name}\n    route_prefix: /hello/\n    import: {Import("Hello")}\n    args:\n      message: {message}\n";

        Assert.Equal(HttpStatusCode.OK, (await PutAsync(admin, App("old", "from old"), "application/yaml")).Status);
        var (status, answer) = await PutAsync(admin, App("new", "from new"), "application/yaml");

        Assert.True(status == HttpStatusCode.OK, answer.ToJsonString());
        var app = Assert.Single(serve.GetStatus().Applications);
        Assert.Equal(("new", "/hello"), (app.Name, app.RoutePrefix));
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        Assert.Equal("from new", await http.GetStringAsync("/hello").WaitAsync(Bound));
    }
}
