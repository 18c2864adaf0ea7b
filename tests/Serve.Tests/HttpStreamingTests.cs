using System.Net;
using System.Text.Json;

namespace Serve.Tests;

public class HttpStreamingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync() =>
        ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);

    private static HttpClient Client(ServeHost serve) => new() { BaseAddress = serve.HttpAddress, Timeout = Bound };

    private static Task<HttpResponseMessage> OpenAsync(HttpClient http, string path, string? accept = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (accept is not null)
            request.Headers.Accept.ParseAdd(accept);
        return http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Bound);
    }

    private static async Task<StreamReader> ReaderAsync(HttpResponseMessage response) =>
        new(await response.Content.ReadAsStreamAsync().WaitAsync(Bound));

    [Fact]
    public async Task A_streaming_call_method_is_served_as_NDJSON()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpTicker.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        using var response = await OpenAsync(http, "/?n=3");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.Contains("x-request-id"));
        var body = await response.Content.ReadAsStringAsync().WaitAsync(Bound);
        var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            using var json = JsonDocument.Parse(lines[i]);
            Assert.Equal(i, json.RootElement.GetProperty("index").GetInt32());
            Assert.Equal($"item {i}", json.RootElement.GetProperty("label").GetString());
        }

        using var empty = await OpenAsync(http, "/?n=0");
        Assert.Equal(HttpStatusCode.OK, empty.StatusCode);
        Assert.Equal("", await empty.Content.ReadAsStringAsync().WaitAsync(Bound));
    }

    [Fact]
    public async Task Accept_text_event_stream_gets_server_sent_events()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpTicker.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        using var response = await OpenAsync(http, "/?n=2", "text/event-stream");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadAsStringAsync().WaitAsync(Bound);
        Assert.Equal(
            "data: {\"index\":0,\"label\":\"item 0\"}\n\n" +
            "data: {\"index\":1,\"label\":\"item 1\"}\n\n", body);
    }

    [Fact]
    public async Task Each_item_reaches_the_client_as_it_is_produced()
    {
        await using var serve = await StartAsync();
        var probe = new StreamProbe();
        await serve.RunAsync(HttpStepper.Bind(probe)).WaitAsync(Bound);
        using var http = Client(serve);

        using var response = await OpenAsync(http, "/");
        using var reader = await ReaderAsync(response);
        // The producer is blocked on the gate until the first line has arrived: only a flushed chunk gets here.
        Assert.Equal("\"first\"", await reader.ReadLineAsync().WaitAsync(Bound));
        probe.Gate.TrySetResult();
        Assert.Equal("\"second\"", await reader.ReadLineAsync().WaitAsync(Bound));
        Assert.Null(await reader.ReadLineAsync().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_client_that_disconnects_cancels_the_producer_and_frees_the_slot()
    {
        await using var serve = await StartAsync();
        var probe = new StreamProbe();
        await serve.RunAsync(HttpEndless.Bind(probe)).WaitAsync(Bound);
        var http = Client(serve);

        var response = await OpenAsync(http, "/");
        var reader = await ReaderAsync(response);
        Assert.Equal("0", await reader.ReadLineAsync().WaitAsync(Bound));
        reader.Dispose();
        response.Dispose();
        http.Dispose();

        await probe.Cancelled.Task.WaitAsync(Bound);
        await NoOngoingRequestsAsync(serve, "HttpEndless");
    }

    [Fact]
    public async Task InvokeCallStreamAsync_streams_from_an_untyped_handle_and_releases_the_slot_after_break()
    {
        await using var serve = await StartAsync();
        var probe = new StreamProbe();
        await serve.RunAsync(HttpTicker.Bind(), new RunOptions { Name = "ticks", RoutePrefix = "/ticks" }).WaitAsync(Bound);
        var handle = await serve.RunAsync(HttpEndless.Bind(probe), new RunOptions { Name = "endless", RoutePrefix = "/endless" }).WaitAsync(Bound);

        var ticks = serve.GetHandle("HttpTicker", "ticks");
        var all = new List<object?>();
        await foreach (var item in ticks.InvokeCallStreamAsync([3]).WithCancellation(default))
            all.Add(item);
        Assert.Equal([new Tick(0, "item 0"), new Tick(1, "item 1"), new Tick(2, "item 2")], all.Cast<Tick>());

        var seen = new List<int>();
        await foreach (var item in handle.InvokeCallStreamAsync([]))
        {
            seen.Add((int)item!);
            if (seen.Count == 2)
                break;
        }
        Assert.Equal([0, 1], seen);
        await probe.Cancelled.Task.WaitAsync(Bound);
        await NoOngoingRequestsAsync(serve, "HttpEndless", "endless");

        await Assert.ThrowsAsync<NotSupportedException>(async () => await handle.InvokeCallAsync([]));
        await Assert.ThrowsAsync<NotSupportedException>(async () => await handle.InvokeAsync("Call", []));
    }

    [Fact]
    public async Task A_stream_that_fails_before_its_first_item_is_a_500_with_the_request_id()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpStreamFaulty.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        using var response = await OpenAsync(http, "/");
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync().WaitAsync(Bound);
        var requestId = Assert.Single(response.Headers.GetValues("x-request-id"));
        Assert.Contains(requestId, body);
        Assert.DoesNotContain("hunter2", body);
        await NoOngoingRequestsAsync(serve, "HttpStreamFaulty");
    }

    [Fact]
    public async Task A_stream_that_fails_after_its_first_item_ends_the_response_and_SSE_gets_an_error_event()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpStreamBreaks.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        using var ndjson = await OpenAsync(http, "/");
        Assert.Equal(HttpStatusCode.OK, ndjson.StatusCode);
        Assert.Equal("1\n", await ndjson.Content.ReadAsStringAsync().WaitAsync(Bound));

        var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Accept.ParseAdd("text/event-stream");
        request.Headers.Add("x-request-id", "stream-42");
        using var sse = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        var body = await sse.Content.ReadAsStringAsync().WaitAsync(Bound);
        Assert.Equal("data: 1\n\nevent: error\ndata: {\"requestId\":\"stream-42\"}\n\n", body);
        Assert.DoesNotContain("hunter2", body);
        await NoOngoingRequestsAsync(serve, "HttpStreamBreaks");
    }

    private static async Task NoOngoingRequestsAsync(ServeHost serve, string deployment, string? application = null)
    {
        using var bound = new CancellationTokenSource(Bound);
        while (true)
        {
            var info = serve.GetDeployment(deployment, application);
            if (info.Replicas.All(r => r.OngoingRequests == 0))
                return;
            await Task.Delay(10, bound.Token);
        }
    }
}
