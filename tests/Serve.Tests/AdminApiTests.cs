using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Serve.Tests;

public sealed class AdminApiTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string TestAssembly = typeof(TestApps).Assembly.Location.Replace('\\', '/');

    private static string Import(string method) => $"{TestAssembly}:Serve.Tests.TestApps.{method}";

    private static Task<ServeHost> StartAsync(string? token = null) => ServeHost.StartAsync(o =>
    {
        o.Http.Enabled = false;
        o.Admin.Enabled = true;
        o.Admin.Port = 0;
        o.Admin.AccessToken = token;
    }).WaitAsync(Bound);

    private static HttpClient Client(ServeHost serve, string? token = null)
    {
        var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };
        if (token is not null)
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private static string Yaml(params (string Name, string Message)[] apps) =>
        "applications:\n" + string.Concat(apps.Select(a =>
            $"  - name: {a.Name}\n    route_prefix: /{a.Name}\n    import: {Import("Hello")}\n    args:\n      message: \"{a.Message}\"\n"));

    private static async Task<(HttpStatusCode Status, JsonNode Body)> SendAsync(HttpClient http, HttpMethod method, string path, string? yaml = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (yaml is not null)
            request.Content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using var response = await http.SendAsync(request).WaitAsync(Bound);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Bound);
        return (response.StatusCode, JsonNode.Parse(text)!);
    }

    private static string[] Names(JsonNode status) =>
        status["applications"]!.AsArray().Select(a => (string)a!["name"]!).ToArray();

    [Fact]
    public async Task Admin_api_is_off_by_default_for_an_embedded_host()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        Assert.Null(serve.AdminAddress);
    }

    [Fact]
    public async Task Get_reports_applications_deployments_and_replicas()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeter.Bind("hi"), new RunOptions { Name = "greet", RoutePrefix = "/greet" }).WaitAsync(Bound);
        Assert.Matches(@"^http://127\.0\.0\.1:\d+/$", serve.AdminAddress!.ToString());
        using var http = Client(serve);

        var (status, body) = await SendAsync(http, HttpMethod.Get, "/api/serve/applications");

        Assert.Equal(HttpStatusCode.OK, status);
        var app = body["applications"]![0]!;
        Assert.Equal("greet", (string)app["name"]!);
        Assert.Equal("/greet", (string)app["route_prefix"]!);
        Assert.Equal("HEALTHY", (string)app["status"]!);
        var deployment = app["deployments"]![0]!;
        Assert.Equal("Greeter", (string)deployment["name"]!);
        Assert.Equal(1, (int)deployment["target_replicas"]!);
        Assert.Equal(1, (int)deployment["running_replicas"]!);
        Assert.Equal("RUNNING", (string)deployment["replicas"]![0]!["state"]!);
        Assert.Equal("Shared", (string)deployment["runtime_env"]!);
        Assert.Equal("Default", (string)deployment["replicas"]![0]!["load_context"]!);
    }

    [Fact]
    public async Task Put_deploys_the_listed_applications_and_removes_the_others()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeter.Bind("old"), new RunOptions { Name = "stale", RoutePrefix = "/stale" }).WaitAsync(Bound);
        using var http = Client(serve);

        var (status, body) = await SendAsync(http, HttpMethod.Put, "/api/serve/applications", Yaml(("a", "from a"), ("b", "from b")));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["a", "b"], Names(body));
        Assert.Equal(["a", "b"], serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal("from b", await serve.GetHandle<GreeterHandle>("Greeter", "b").CallAsync().AsTask().WaitAsync(Bound));

        // JSON works too, and is declarative: b goes away.
        var json = new JsonObject
        {
            ["applications"] = new JsonArray(new JsonObject { ["name"] = "a", ["import"] = Import("Hello"), ["args"] = new JsonObject { ["message"] = "a2" } }),
        };
        using var response = await http.PutAsync("/api/serve/applications", new StringContent(json.ToJsonString(), Encoding.UTF8, "application/json")).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["a"], serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal("a2", await serve.GetHandle<GreeterHandle>("Greeter", "a").CallAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task Put_with_an_invalid_config_answers_400_with_every_key_path_and_changes_nothing()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeter.Bind("keep"), new RunOptions { Name = "keep", RoutePrefix = "/keep" }).WaitAsync(Bound);
        using var http = Client(serve);
        var yaml = $"""
            htp: {"{"}{"}"}
            applications:
              - name: broken
                import: {Import("Hello")}
                args:
                  message: x
                deployments:
                  - name: Greeter
                    num_replicas: two
            """;

        var (status, body) = await SendAsync(http, HttpMethod.Put, "/api/serve/applications", yaml);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var paths = body["errors"]!.AsArray().Select(e => (string)e!["path"]!).ToArray();
        Assert.Contains("htp", paths);
        Assert.Contains("applications[0].deployments[0].num_replicas", paths);
        Assert.Contains("request body: applications[0].deployments[0].num_replicas: expected an integer of 0 or more", (string)body["message"]!);
        Assert.Equal(["keep"], serve.GetStatus().Applications.Select(a => a.Name));
    }

    [Fact]
    public async Task Delete_removes_one_application_or_all_and_404s_an_unknown_name()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeter.Bind("1"), new RunOptions { Name = "one", RoutePrefix = "/one" }).WaitAsync(Bound);
        await serve.RunAsync(Greeter.Bind("2"), new RunOptions { Name = "two", RoutePrefix = "/two" }).WaitAsync(Bound);
        await serve.RunAsync(Greeter.Bind("3"), new RunOptions { Name = "three", RoutePrefix = "/three" }).WaitAsync(Bound);
        using var http = Client(serve);

        var (missing, missingBody) = await SendAsync(http, HttpMethod.Delete, "/api/serve/applications/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Contains("'nope'", (string)missingBody["message"]!);

        var (one, _) = await SendAsync(http, HttpMethod.Delete, "/api/serve/applications/one");
        Assert.Equal(HttpStatusCode.OK, one);
        Assert.Equal(["three", "two"], serve.GetStatus().Applications.Select(a => a.Name));

        var (all, body) = await SendAsync(http, HttpMethod.Delete, "/api/serve/applications");
        Assert.Equal(HttpStatusCode.OK, all);
        Assert.Empty(Names(body));
        Assert.Empty(serve.GetStatus().Applications);
    }

    [Fact]
    public async Task A_configured_token_is_required_on_every_request()
    {
        await using var serve = await StartAsync(token: "s3cret");

        using (var anonymous = Client(serve))
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(anonymous, HttpMethod.Get, "/api/serve/applications")).Status);
        using (var wrong = Client(serve, "nope"))
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(wrong, HttpMethod.Delete, "/api/serve/applications")).Status);
        using var right = Client(serve, "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(right, HttpMethod.Get, "/api/serve/applications")).Status);
    }

    [Fact]
    public async Task A_non_loopback_address_without_a_token_is_refused_at_start_up()
    {
        var e = await Assert.ThrowsAsync<ServeException>(() => ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Host = "0.0.0.0";
            o.Admin.Port = 0;
        }).WaitAsync(Bound));
        Assert.Contains("ServeOptions.Admin.AccessToken", e.Message);
    }

    [Fact]
    public async Task A_port_in_use_fails_start_up_with_a_clear_message()
    {
        await using var first = await StartAsync();
        var e = await Assert.ThrowsAsync<ServeException>(() => ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Port = first.AdminAddress!.Port;
        }).WaitAsync(Bound));
        Assert.Contains($"could not listen on http://127.0.0.1:{first.AdminAddress!.Port}", e.Message);
    }

    [Fact]
    public async Task Post_shutdown_answers_202_and_stops_the_host()
    {
        var serve = await StartAsync();
        await using (serve)
        {
            using var http = Client(serve);
            using var response = await http.PostAsync("/api/serve/shutdown", null).WaitAsync(Bound);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            await Task.Delay(Timeout.Infinite, serve.ShutdownStarted).ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(Bound);
            await serve.ShutdownAsync().WaitAsync(Bound);
            Assert.Null(serve.AdminAddress);
        }
    }
}
