using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Serve.Tests;

public class HttpIngressTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync(Action<ServeOptions>? configure = null) =>
        ServeHost.StartAsync(o =>
        {
            o.Http.Port = 0;
            configure?.Invoke(o);
        }).WaitAsync(Bound);

    private static HttpClient Client(ServeHost serve) => new() { BaseAddress = serve.HttpAddress, Timeout = Bound };

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> SendAsync(HttpClient http, HttpRequestMessage request)
    {
        var response = await http.SendAsync(request).WaitAsync(Bound);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Bound), response);
    }

    private static Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> GetAsync(HttpClient http, string path) =>
        SendAsync(http, new HttpRequestMessage(HttpMethod.Get, path));

    private static Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> PostAsync(HttpClient http, string path, string json) =>
        SendAsync(http, new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(json) });

    [Fact]
    public async Task Hello_world_over_GET_and_POST()
    {
        await using var serve = await StartAsync();
        Assert.NotNull(serve.HttpAddress);
        Assert.NotEqual(0, serve.HttpAddress!.Port);
        await serve.RunAsync(HttpHello.Bind("Hello world!")).WaitAsync(Bound);
        using var http = Client(serve);

        var get = await GetAsync(http, "/");
        Assert.Equal(HttpStatusCode.OK, get.Status);
        Assert.Equal("Hello world!", get.Body);
        Assert.Equal("text/plain", get.Response.Content.Headers.ContentType?.MediaType);

        var post = await SendAsync(http, new HttpRequestMessage(HttpMethod.Post, "/"));
        Assert.Equal(HttpStatusCode.OK, post.Status);
        Assert.Equal("Hello world!", post.Body);
    }

    [Fact]
    public async Task Arguments_come_from_a_JSON_array_a_single_value_an_object_or_the_query_string()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpEcho.Bind(), new RunOptions { Name = "echo", RoutePrefix = "/echo" }).WaitAsync(Bound);
        await serve.RunAsync(HttpAdder.Bind(), new RunOptions { Name = "math", RoutePrefix = "/math" }).WaitAsync(Bound);
        using var http = Client(serve);

        Assert.Equal("hello bob", (await PostAsync(http, "/echo", "\"bob\"")).Body);
        Assert.Equal("hello ann", (await PostAsync(http, "/echo", "[\"ann\"]")).Body);
        Assert.Equal("hello cy", (await PostAsync(http, "/echo", "{\"name\":\"cy\"}")).Body);
        Assert.Equal("hello 42", (await GetAsync(http, "/echo?name=42")).Body);

        foreach (var (status, body, response) in new[]
                 {
                     await PostAsync(http, "/math", "[2, 3]"),
                     await PostAsync(http, "/math", "{\"a\": 2, \"b\": 3}"),
                     await SendAsync(http, new HttpRequestMessage(HttpMethod.Put, "/math") { Content = Json("{\"b\": 3, \"A\": 2}") }),
                     await GetAsync(http, "/math?a=2&b=3"),
                 })
        {
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            using var json = JsonDocument.Parse(body);
            Assert.Equal(5, json.RootElement.GetProperty("sum").GetInt32());
            Assert.Equal(2, json.RootElement.GetProperty("a").GetInt32());
        }
    }

    [Fact]
    public async Task Bytes_are_octet_stream_and_void_is_204()
    {
        var probe = new Probe();
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpBytes.Bind(), new RunOptions { Name = "bytes", RoutePrefix = "/bytes" }).WaitAsync(Bound);
        await serve.RunAsync(HttpSink.Bind(probe), new RunOptions { Name = "sink", RoutePrefix = "/sink" }).WaitAsync(Bound);
        using var http = Client(serve);

        var bytes = await http.PostAsync("/bytes", Json("3")).WaitAsync(Bound);
        Assert.Equal("application/octet-stream", bytes.Content.Headers.ContentType?.MediaType);
        Assert.Equal(new byte[] { 0, 1, 2 }, await bytes.Content.ReadAsByteArrayAsync().WaitAsync(Bound));

        var sink = await PostAsync(http, "/sink", "\"x\"");
        Assert.Equal(HttpStatusCode.NoContent, sink.Status);
        Assert.Equal(["x"], probe.Configs);
    }

    [Fact]
    public async Task The_longest_route_prefix_wins_on_a_slash_boundary_and_unknown_routes_are_404()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpHello.Bind("root"), new RunOptions { Name = "root", RoutePrefix = "/" }).WaitAsync(Bound);
        await serve.RunAsync(HttpHello.Bind("math"), new RunOptions { Name = "math", RoutePrefix = "/math" }).WaitAsync(Bound);
        await serve.RunAsync(HttpHello.Bind("api"), new RunOptions { Name = "api", RoutePrefix = "/api" }).WaitAsync(Bound);
        using var http = Client(serve);

        Assert.Equal("math", (await GetAsync(http, "/math")).Body);
        Assert.Equal("math", (await GetAsync(http, "/math/add/more")).Body);
        Assert.Equal("root", (await GetAsync(http, "/mathx")).Body);
        Assert.Equal("root", (await GetAsync(http, "/other")).Body);
        Assert.Equal("api", (await GetAsync(http, "/api/")).Body);

        await serve.DeleteAsync("root").WaitAsync(Bound);
        var missing = await GetAsync(http, "/mathx");
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.DoesNotContain("math", missing.Body);
        Assert.DoesNotContain("api", missing.Body);
        Assert.DoesNotContain("HttpHello", missing.Body);
        Assert.True(missing.Response.Headers.Contains("x-request-id"));
        Assert.Equal("math", (await GetAsync(http, "/math/x")).Body);
    }

    [Fact]
    public async Task Bad_arguments_are_400_with_the_reason()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpAdder.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        var wrongType = await PostAsync(http, "/", "[\"two\", 3]");
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.Status);
        Assert.Contains("'a'", wrongType.Body);

        var notJson = await PostAsync(http, "/", "{not json");
        Assert.Equal(HttpStatusCode.BadRequest, notJson.Status);
        Assert.Contains("not valid JSON", notJson.Body);

        var missing = await PostAsync(http, "/", "{\"a\": 1}");
        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.Contains("'b'", missing.Body);

        var missingQuery = await GetAsync(http, "/?a=1");
        Assert.Equal(HttpStatusCode.BadRequest, missingQuery.Status);
        Assert.Contains("'b'", missingQuery.Body);

        var wrongCount = await PostAsync(http, "/", "[1, 2, 3]");
        Assert.Equal(HttpStatusCode.BadRequest, wrongCount.Status);
    }

    [Fact]
    public async Task A_call_method_taking_HttpRequest_gets_the_request_and_its_IResult_is_executed()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpRaw.Bind(), new RunOptions { Name = "raw", RoutePrefix = "/raw" }).WaitAsync(Bound);
        using var http = Client(serve);

        var created = await SendAsync(http, new HttpRequestMessage(HttpMethod.Post, "/raw/sub?who=ada") { Content = new StringContent("not json at all") });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal("POST /raw/sub who=ada body=not json at all", created.Body);

        var bad = await GetAsync(http, "/raw");
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Contains("say who", bad.Body);
    }

    [Fact]
    public async Task A_call_method_mixing_HttpRequest_with_other_parameters_is_501_with_the_fix()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpMixed.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        var mixed = await PostAsync(http, "/", "[1]");
        Assert.Equal(HttpStatusCode.NotImplemented, mixed.Status);
        Assert.Contains("take only the HttpRequest", mixed.Body);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413()
    {
        await using var serve = await StartAsync(o => o.Http.MaxRequestBodySize = 100);
        await serve.RunAsync(HttpEcho.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        var large = await PostAsync(http, "/", "\"" + new string('x', 1000) + "\"");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.Status);
    }

    [Fact]
    public async Task An_exception_in_user_code_is_500_with_the_request_id_and_no_details()
    {
        var logs = new ListLoggerProvider();
        var services = new ServiceCollection().AddLogging(b => b.AddProvider(logs)).BuildServiceProvider();
        await using var serve = await StartAsync(o => o.Services = services);
        await serve.RunAsync(HttpFaulty.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        var failed = await PostAsync(http, "/", "1");
        Assert.Equal(HttpStatusCode.InternalServerError, failed.Status);
        var id = Assert.Single(failed.Response.Headers.GetValues("x-request-id"));
        Assert.Equal($"Internal error; request id {id}", failed.Body.Trim());
        Assert.DoesNotContain("hunter2", failed.Body);
        Assert.DoesNotContain("InvalidOperationException", failed.Body);
        Assert.Contains(logs.Entries, e => e.Message.Contains(id) && e.Exception?.Message.Contains("hunter2") == true);

        Assert.Equal("0", (await PostAsync(http, "/", "0")).Body);
    }

    [Fact]
    public async Task The_request_id_is_echoed_or_generated()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpHello.Bind("hi")).WaitAsync(Bound);
        using var http = Client(serve);

        var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Add("x-request-id", "abc-123");
        var echoed = await SendAsync(http, request);
        Assert.Equal("abc-123", Assert.Single(echoed.Response.Headers.GetValues("x-request-id")));

        var generated = await GetAsync(http, "/");
        Assert.False(string.IsNullOrEmpty(Assert.Single(generated.Response.Headers.GetValues("x-request-id"))));
    }

    [Fact]
    public async Task A_full_deployment_is_503_with_Retry_After()
    {
        var probe = new Probe();
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpGate.Bind(probe)).WaitAsync(Bound);
        using var http = Client(serve);

        // The only slot is held; the queue takes none.
        var held = PostAsync(http, "/", "1");
        await probe.WaitEnteredAsync(1);

        var refused = await PostAsync(http, "/", "2");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.Equal("1", refused.Response.Headers.RetryAfter?.ToString());

        probe.Release();
        Assert.Equal(HttpStatusCode.OK, (await held.WaitAsync(Bound)).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, "/", "3")).Status);
    }

    [Fact]
    public async Task A_request_over_RequestTimeout_is_cancelled_and_504()
    {
        var probe = new Probe();
        await using var serve = await StartAsync(o => o.Http.RequestTimeout = TimeSpan.FromMilliseconds(200));
        await serve.RunAsync(HttpGate.Bind(probe)).WaitAsync(Bound);
        using var http = Client(serve);

        var timedOut = await PostAsync(http, "/", "1");
        Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.Status);
        await TestUtil.WaitUntilAsync(() => probe.Inside == 0, "the cancelled call left the replica");
    }

    [Fact]
    public async Task RequestTimeout_answers_504_at_the_deadline_when_the_method_ignores_its_token()
    {
        var logs = new ListLoggerProvider();
        var services = new ServiceCollection().AddLogging(b => b.AddProvider(logs)).BuildServiceProvider();
        var probe = new StubbornProbe();
        await using var serve = await StartAsync(o =>
        {
            o.Services = services;
            o.Http.RequestTimeout = TimeSpan.FromMilliseconds(200);
        });
        await serve.RunAsync(HttpStubborn.Bind(probe)).WaitAsync(Bound);
        using var http = Client(serve);

        // Answered while the method is still running (it returns only after Release below).
        var timedOut = await PostAsync(http, "/", "-1");
        Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.Status);
        Assert.Contains("Gateway timeout", timedOut.Body);
        Assert.False(probe.Returned.Task.IsCompleted);

        // The abandoned call keeps its slot until it returns (MaxOngoingRequests = 1, no queue).
        var refused = await PostAsync(http, "/", "2");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);

        // Its late exception is observed and logged, and the slot is released.
        probe.Release.SetResult();
        await probe.Returned.Task.WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => logs.Entries.Any(e => e.Exception?.Message == "late failure -1"), "the late failure was logged");
        var id = Assert.Single(timedOut.Response.Headers.GetValues("x-request-id"));
        Assert.Contains(logs.Entries, e => e.Message.Contains(id) && e.Exception?.Message == "late failure -1");
        // The call's task completed (the slot freed) before its failure was logged.
        var after = await PostAsync(http, "/", "3");
        Assert.Equal(HttpStatusCode.OK, after.Status);
        Assert.Equal("done 3", after.Body);
    }

    [Fact]
    public async Task RequestTimeout_answers_504_at_the_deadline_when_the_method_blocks_its_thread()
    {
        using var probe = new BlockerProbe();
        await using var serve = await StartAsync(o => o.Http.RequestTimeout = TimeSpan.FromMilliseconds(200));
        await serve.RunAsync(HttpBlocker.Bind(probe)).WaitAsync(Bound);
        using var http = Client(serve);
        try
        {
            // Answered while the method still blocks its thread (it returns only once the gate opens below).
            var timedOut = await PostAsync(http, "/", "1");
            Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.Status);
            Assert.False(probe.Returned);
        }
        finally
        {
            probe.Gate.Set();
        }
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("HttpBlocker").Replicas.All(r => r.OngoingRequests == 0), "the blocked call returned and freed its slot");
    }

    [Fact]
    public async Task A_port_in_use_fails_StartAsync_with_a_message_naming_the_address()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var e = await Assert.ThrowsAsync<ServeException>(() => ServeHost.StartAsync(o => o.Http.Port = port).WaitAsync(Bound));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("o.Http.Port", e.Message);
    }

    [Fact]
    public async Task With_HTTP_disabled_there_is_no_address()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        Assert.Null(serve.HttpAddress);
    }

    [Fact]
    public async Task Shutdown_stops_the_listener()
    {
        var serve = await StartAsync();
        await serve.RunAsync(HttpHello.Bind("hi")).WaitAsync(Bound);
        var address = serve.HttpAddress!;
        using var http = new HttpClient { BaseAddress = address, Timeout = Bound };
        Assert.Equal("hi", (await GetAsync(http, "/")).Body);

        await serve.DisposeAsync().AsTask().WaitAsync(Bound);
        Assert.Null(serve.HttpAddress);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetAsync("/").WaitAsync(Bound));
    }

    private sealed class ListLoggerProvider : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<(string Message, Exception? Exception)> Entries { get; } = new();
        public ILogger CreateLogger(string categoryName) => new ListLogger(this);
        public void Dispose() { }

        private sealed class ListLogger(ListLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((formatter(state, exception), exception));
        }
    }
}

public class AccessLogTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_access_log_names_the_ingress_replica_that_served_a_call_or_stream_not_the_replicas_it_called()
    {
        var logs = new CapturingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Information));
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Port = 0;
            o.LoggerFactory = loggerFactory;
        }).WaitAsync(Bound);
        await serve.RunAsync(Driver.Bind(ModelA.Bind(), ModelB.Bind()), new RunOptions { Name = "math", RoutePrefix = "/math" }).WaitAsync(Bound);
        await serve.RunAsync(HttpTicker.Bind(), new RunOptions { Name = "ticks", RoutePrefix = "/ticks" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        Assert.Equal("23", await http.GetStringAsync("/math?request=2").WaitAsync(Bound));
        Assert.Equal(2, (await http.GetStringAsync("/ticks?n=2").WaitAsync(Bound)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var driver = Assert.Single(serve.GetDeployment("Driver", "math").Replicas).ReplicaId;
        var modelA = Assert.Single(serve.GetDeployment("ModelA", "math").Replicas).ReplicaId;
        var ticker = Assert.Single(serve.GetDeployment("HttpTicker", "ticks").Replicas).ReplicaId;
        await TestUtil.WaitUntilAsync(() => logs.Lines.Count(l => l.Category == "Serve.Access") >= 2, "both requests are logged");
        var lines = logs.Lines.Where(l => l.Category == "Serve.Access").Select(l => l.Message).ToArray();
        var math = Assert.Single(lines, l => l.StartsWith("GET /math ", StringComparison.Ordinal));
        Assert.EndsWith($"application math deployment Driver replica {driver}", math);
        Assert.DoesNotContain(modelA, math);
        var ticks = Assert.Single(lines, l => l.StartsWith("GET /ticks ", StringComparison.Ordinal));
        Assert.EndsWith($"application ticks deployment HttpTicker replica {ticker}", ticks);
    }
}
