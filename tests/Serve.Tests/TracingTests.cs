using System.Collections.Concurrent;
using System.Diagnostics;

namespace Serve.Tests;

// An ActivityListener sees every Serve span in the process, so these tests run alone (not beside other classes).
[CollectionDefinition(nameof(TracingTests), DisableParallelization = true)]
public sealed class TracingCollection;

[Collection(nameof(TracingTests))]
public sealed class TracingTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ConcurrentQueue<Activity> _spans = new();
    private readonly ActivityListener _listener;

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ServeDiagnostics.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _spans.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    private Activity[] Spans(string application) =>
        _spans.Where(a => (a.GetTagItem("serve.application") as string) == application).ToArray();

    private static Activity Span(IEnumerable<Activity> spans, string name) =>
        Assert.Single(spans, s => s.DisplayName == name);

    [Fact]
    public async Task A_three_deployment_pipeline_called_through_a_handle_is_one_trace_with_the_ingress_call_as_parent()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var driver = await serve.RunAsync(Driver.Bind(ModelA.Bind(), ModelB.Bind()), new RunOptions { Name = "traced" }).WaitAsync(Bound);

        Assert.Equal(23, await driver.CallAsync(2).AsTask().WaitAsync(Bound));

        await TestUtil.WaitUntilAsync(() => Spans("traced").Length >= 3, "three spans");
        var spans = Spans("traced");
        var root = Span(spans, "Driver.CallAsync");
        var a = Span(spans, "ModelA.Call");
        var b = Span(spans, "ModelB.CallAsync");
        Assert.Equal(default, root.ParentSpanId);
        Assert.Equal(root.SpanId, a.ParentSpanId);
        Assert.Equal(root.SpanId, b.ParentSpanId);
        Assert.All(spans, s => Assert.Equal(root.TraceId, s.TraceId));
        Assert.Equal("ModelA", a.GetTagItem("serve.deployment"));
        Assert.Equal("Call", a.GetTagItem("serve.method"));
        Assert.Equal(serve.GetDeployment("ModelA", "traced").Replicas.Single().ReplicaId, a.GetTagItem("serve.replica"));
        Assert.IsType<double>(a.GetTagItem("serve.queued_ms"));
        Assert.All(spans, s => Assert.Equal(ActivityStatusCode.Unset, s.Status));
    }

    [Fact]
    public async Task An_HTTP_request_continues_the_client_s_W3C_trace_and_is_the_parent_of_the_ingress_call()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(Driver.Bind(ModelA.Bind(), ModelB.Bind()), new RunOptions { Name = "httptraced", RoutePrefix = "/traced" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        var clientTrace = ActivityTraceId.CreateRandom();
        var clientSpan = ActivitySpanId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/traced?request=2");
        request.Headers.Add("traceparent", $"00-{clientTrace.ToHexString()}-{clientSpan.ToHexString()}-01");

        using var response = await http.SendAsync(request).WaitAsync(Bound);
        Assert.Equal("23", await response.Content.ReadAsStringAsync());

        await TestUtil.WaitUntilAsync(() => Spans("httptraced").Length >= 4, "four spans");
        var spans = Spans("httptraced");
        var server = Span(spans, "GET /traced");
        var ingress = Span(spans, "Driver.CallAsync");
        Assert.Equal(ActivityKind.Server, server.Kind);
        Assert.Equal(clientTrace, server.TraceId);
        Assert.Equal(clientSpan, server.ParentSpanId);
        Assert.Equal(200, server.GetTagItem("http.response.status_code"));
        Assert.Equal(response.Headers.GetValues("x-request-id").Single(), server.GetTagItem("serve.request_id"));
        Assert.Equal(server.SpanId, ingress.ParentSpanId);
        Assert.Equal(ingress.SpanId, Span(spans, "ModelA.Call").ParentSpanId);
    }

    [Fact]
    public async Task A_call_into_an_isolated_context_and_the_calls_it_makes_stay_in_the_trace()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var app = IsoIngress.Bind(IsoLeaf.Bind()).WithOptions(o => o.RuntimeEnv = RuntimeEnv.Isolated());
        var handle = await serve.RunAsync(app, new RunOptions { Name = "isotraced" }).WaitAsync(Bound);

        Assert.StartsWith("ingress(hi!)", await handle.CallAsync("hi").AsTask().WaitAsync(Bound));

        await TestUtil.WaitUntilAsync(() => Spans("isotraced").Length >= 2, "two spans");
        var spans = Spans("isotraced");
        // The leaf call is made by the isolated copy of IsoIngress through its own copy of the generated handle.
        Assert.Equal(Span(spans, "IsoIngress.Call").SpanId, Span(spans, "IsoLeaf.Call").ParentSpanId);
    }

    [Fact]
    public async Task A_batch_has_its_own_span_linked_to_the_calls_it_served_and_current_while_the_method_runs()
    {
        var probe = new BatchProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var doubler = await serve.RunAsync(Doubler.Bind(probe).WithOptions(o => o.UserConfig = new BatchConfig(4)), new RunOptions { Name = "batchtraced" }).WaitAsync(Bound);

        var results = await Task.WhenAll(Enumerable.Range(1, 4).Select(i => doubler.DoubleAsync(i).AsTask())).WaitAsync(Bound);
        Assert.Equal([2, 4, 6, 8], results);

        await TestUtil.WaitUntilAsync(() => Spans("batchtraced").Length >= 4 && _spans.Any(s => s.DisplayName == "batch Doubler.Double"), "four call spans and the batch span");
        var calls = Spans("batchtraced").Where(s => s.DisplayName == "Doubler.Double").ToArray();
        var batch = Assert.Single(_spans, s => s.DisplayName == "batch Doubler.Double");
        Assert.Equal(4, calls.Length);
        Assert.Equal(4, batch.GetTagItem("serve.batch_size"));
        Assert.All(calls, c => Assert.Equal(4, c.GetTagItem("serve.batch_size")));
        Assert.Equal(calls.Select(c => c.SpanId.ToHexString()).Order(), batch.Links.Select(l => l.Context.SpanId.ToHexString()).Order());
    }

    [Fact]
    public async Task A_failed_call_s_span_says_so()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var thrower = await serve.RunAsync(Thrower.Bind(), new RunOptions { Name = "failtraced" }).WaitAsync(Bound);

        await Assert.ThrowsAsync<KeyNotFoundException>(async () => await thrower.CallAsync(7).AsTask().WaitAsync(Bound));
        await Assert.ThrowsAsync<FormatException>(async () => await thrower.FailAsync().AsTask().WaitAsync(Bound));

        await TestUtil.WaitUntilAsync(() => Spans("failtraced").Length >= 2, "the calls' spans");
        var value = Span(Spans("failtraced"), "Thrower.Call");
        var @void = Span(Spans("failtraced"), "Thrower.Fail");
        Assert.Equal((ActivityStatusCode.Error, "no item 7", typeof(KeyNotFoundException).FullName), (value.Status, value.StatusDescription, value.GetTagItem("error.type")));
        Assert.Equal((ActivityStatusCode.Error, "bad format"), (@void.Status, @void.StatusDescription));
    }
}
