using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Serve.CodeGeneration;
using Serve.Http;

namespace Serve.Tests;

/// <summary>The parts of the HTTP ingress on their own, without Kestrel: binding, error mapping, result writing, route matching.</summary>
public class HttpPartsTests
{
    private static readonly DeploymentMethod AddCall = Call(1, typeof(int), ["a", "b"], [typeof(int), typeof(int)]);

    private static readonly DeploymentMethod NoArgumentCall = Call(2, typeof(string), [], []);

    private static readonly DeploymentMethod RequestCall = Call(3, typeof(string), ["request"], [typeof(HttpRequest)]);

    private static DeploymentMethod Call(int id, Type result, string[] names, Type[] types) => new()
    {
        Name = "Call", HandleName = "CallAsync", MethodId = id, IsCall = true, Kind = DeploymentMethodKind.Value,
        ResultType = result, ParameterNames = names, ParameterTypes = types,
    };

    private static DefaultHttpContext Request(string method, string query = "", string? body = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.QueryString = new QueryString(query);
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(body ?? ""));
        context.Response.Body = new MemoryStream();
        return context;
    }

    private static int[] Ints(object?[] arguments) => arguments.Select(a => ((JsonElement)a!).GetInt32()).ToArray();

    // ---- RequestBinder ----------------------------------------------------------------------------------------

    [Fact]
    public async Task Binder_binds_a_GET_query_by_parameter_name()
    {
        var (method, arguments, takesRequest) = await RequestBinder.BindCallAsync([AddCall], Request("GET", "?b=2&a=1"), false, default);

        Assert.Same(AddCall, method);
        Assert.Equal([1, 2], Ints(arguments));
        Assert.False(takesRequest);
    }

    [Fact]
    public async Task Binder_names_a_missing_query_parameter()
    {
        var e = await Assert.ThrowsAsync<RequestBindingException>(async () => await RequestBinder.BindCallAsync([AddCall], Request("GET", "?a=1"), false, default));

        Assert.Equal("missing query parameter 'b' (the call takes 2 argument(s): a (Int32), b (Int32)).", e.Message);
    }

    [Fact]
    public async Task Binder_binds_a_JSON_array_body_by_position_and_an_object_by_name()
    {
        var (_, byPosition, _) = await RequestBinder.BindCallAsync([AddCall], Request("POST", body: "[3, 4]"), false, default);
        var (_, byName, _) = await RequestBinder.BindCallAsync([AddCall], Request("PUT", body: """{"B": 6, "a": 5}"""), false, default);

        Assert.Equal([3, 4], Ints(byPosition));
        Assert.Equal([5, 6], Ints(byName));
    }

    [Fact]
    public async Task Binder_picks_the_call_without_arguments_for_an_empty_body()
    {
        var (method, arguments, _) = await RequestBinder.BindCallAsync([AddCall, NoArgumentCall], Request("POST"), false, default);

        Assert.Same(NoArgumentCall, method);
        Assert.Empty(arguments);
    }

    [Fact]
    public async Task Binder_refuses_an_empty_body_when_the_call_takes_arguments()
    {
        var e = await Assert.ThrowsAsync<RequestBindingException>(async () => await RequestBinder.BindCallAsync([AddCall], Request("POST"), false, default));

        Assert.StartsWith("the request body is empty, but the call takes 2 argument(s): a (Int32), b (Int32);", e.Message);
    }

    [Fact]
    public async Task Binder_refuses_an_unknown_property_unless_the_deployment_allows_it()
    {
        const string body = """{"a": 1, "b": 2, "c": 3}""";

        var e = await Assert.ThrowsAsync<RequestBindingException>(async () => await RequestBinder.BindCallAsync([AddCall], Request("POST", body: body), false, default));
        var (_, lenient, _) = await RequestBinder.BindCallAsync([AddCall], Request("POST", body: body), true, default);

        Assert.Contains("property 'c' that is not a parameter of the call", e.Message);
        Assert.Contains("AllowUnknownJsonProperties", e.Message);
        Assert.Equal([1, 2], Ints(lenient));
    }

    [Fact]
    public async Task Binder_lets_the_JsonException_of_a_malformed_body_through()
    {
        await Assert.ThrowsAnyAsync<JsonException>(async () => await RequestBinder.BindCallAsync([AddCall], Request("POST", body: "[1,"), false, default));
    }

    [Fact]
    public async Task Binder_passes_the_request_itself_to_a_call_that_takes_only_the_request()
    {
        var context = Request("POST", body: "not json");

        var (method, arguments, takesRequest) = await RequestBinder.BindCallAsync([RequestCall], context, false, default);

        Assert.Same(RequestCall, method);
        Assert.Same(context.Request, Assert.Single(arguments));
        Assert.True(takesRequest);
    }

    private static HttpEndpointRoutes.Route ItemEndpoint()
    {
        var method = new DeploymentMethod
        {
            Name = "Item", HandleName = "ItemAsync", MethodId = 7, Kind = DeploymentMethodKind.Value, ResultType = typeof(string),
            ParameterNames = ["id", "user", "limit"], ParameterTypes = [typeof(int), typeof(string), typeof(int)],
        };
        var endpoint = new HttpEndpoint
        {
            MethodId = 7, Method = "GET", Template = "items/{id}",
            Parameters =
            [
                new() { Source = HttpParameterSource.Auto, Name = "id" },
                new() { Source = HttpParameterSource.Header, Name = "x-user" },
                new() { Source = HttpParameterSource.Query, Name = "limit", HasDefault = true, DefaultValue = 10 },
            ],
        };
        return new HttpEndpointRoutes.Route(endpoint, method, new TemplateMatcher(TemplateParser.Parse(endpoint.Template), new RouteValueDictionary()));
    }

    [Fact]
    public async Task Binder_binds_an_endpoint_from_route_header_and_query_defaults()
    {
        var context = Request("GET");
        context.Request.Headers["x-user"] = "ada";

        var arguments = await RequestBinder.BindEndpointAsync(ItemEndpoint(), new RouteValueDictionary { ["id"] = "42" }, context.Request, false, default);

        Assert.Equal([42, "ada", 10], arguments);
    }

    [Fact]
    public async Task Binder_names_a_missing_header_and_an_invalid_route_value()
    {
        var missing = await Assert.ThrowsAsync<RequestBindingException>(async () =>
            await RequestBinder.BindEndpointAsync(ItemEndpoint(), new RouteValueDictionary { ["id"] = "42" }, Request("GET").Request, false, default));
        var withUser = Request("GET");
        withUser.Request.Headers["x-user"] = "ada";
        var invalid = await Assert.ThrowsAsync<RequestBindingException>(async () =>
            await RequestBinder.BindEndpointAsync(ItemEndpoint(), new RouteValueDictionary { ["id"] = "abc" }, withUser.Request, false, default));

        Assert.Equal("missing header value 'x-user'.", missing.Message);
        Assert.Equal("'abc' is not a valid Int32 for 'id'.", invalid.Message);
    }

    // ---- HttpErrorMapper --------------------------------------------------------------------------------------

    private static readonly HttpErrorMapper Errors = new(TimeSpan.FromSeconds(5), maxRequestBodySize: 1024);

    [Fact]
    public void Mapper_answers_binding_failures_400_with_the_reason()
    {
        var binding = Errors.BindingFailed(new RequestBindingException("missing query parameter 'b'."), endpointBody: false, timedOut: false);
        var json = Errors.BindingFailed(new JsonException("bad token"), endpointBody: false, timedOut: false);
        var endpointJson = Errors.BindingFailed(new JsonException("bad token"), endpointBody: true, timedOut: false);

        Assert.Equal(new HttpError(400, "Bad request: missing query parameter 'b'."), binding);
        Assert.Equal(new HttpError(400, "Bad request: the body is not valid JSON: bad token"), json);
        Assert.Equal(new HttpError(400, "Bad request: the body is not valid JSON for the parameter: bad token"), endpointJson);
    }

    [Fact]
    public void Mapper_answers_an_unreadable_body_413_over_the_limit_and_400_otherwise()
    {
        var tooLarge = Errors.BindingFailed(new BadHttpRequestException("too large", 413), endpointBody: false, timedOut: false);
        var unreadable = Errors.BindingFailed(new IOException("bad chunk"), endpointBody: false, timedOut: false);

        Assert.Equal(new HttpError(413, "Payload too large: the request body exceeds 1024 bytes."), tooLarge);
        Assert.Equal(new HttpError(400, "Bad request: the request body could not be read: bad chunk"), unreadable);
    }

    [Fact]
    public void Mapper_treats_only_request_faults_and_cancellation_as_binding_failures()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.True(HttpErrorMapper.IsBindingFailure(new RequestBindingException("x"), default));
        Assert.True(HttpErrorMapper.IsBindingFailure(new JsonException("x"), default));
        Assert.True(HttpErrorMapper.IsBindingFailure(new OperationCanceledException(), cancelled.Token));
        Assert.False(HttpErrorMapper.IsBindingFailure(new OperationCanceledException(), default));
        Assert.False(HttpErrorMapper.IsBindingFailure(new InvalidOperationException("x"), default));
    }

    [Fact]
    public void Mapper_answers_overload_and_a_stopped_replica_503_with_Retry_After()
    {
        var overloaded = Errors.CallFailed(new BackPressureException("app", "Model", 1, 1, 0), "r1", cancelled: false, timedOut: false)!.Value;
        var stopped = Errors.CallFailed(new ReplicaStoppedException("app", "Model", "Model#1", TimeSpan.FromSeconds(2)), "r2", cancelled: false, timedOut: false)!.Value;

        Assert.Equal((503, "1", false), (overloaded.StatusCode, overloaded.RetryAfter, overloaded.LogError));
        Assert.Equal("Service unavailable: the application is overloaded; retry later.", overloaded.Body);
        Assert.Equal((503, "1", true), (stopped.StatusCode, stopped.RetryAfter, stopped.LogError));
        Assert.EndsWith("Request id r2", stopped.Body);
    }

    [Fact]
    public void Mapper_answers_a_failed_deployment_503_with_its_reason()
    {
        var failed = new DeploymentFailedException("app", "Model", "Deployment 'Model' of application 'app' failed: the constructor threw.", null);

        var answer = Errors.CallFailed(failed, "r1", cancelled: false, timedOut: false);

        Assert.Equal(new HttpError(503, "Service unavailable: " + failed.Message), answer);
    }

    [Fact]
    public void Mapper_answers_timeouts_504_and_a_client_gone_not_at_all()
    {
        var inner = Errors.CallFailed(new TimeoutException("inner"), "r1", cancelled: false, timedOut: false);
        var requestTimeout = Errors.CallFailed(new OperationCanceledException(), "r1", cancelled: true, timedOut: true);
        var clientGone = Errors.CallFailed(new OperationCanceledException(), "r1", cancelled: true, timedOut: false);

        Assert.Equal(new HttpError(504, "Gateway timeout: a call inside the application timed out; request id r1", LogError: true), inner);
        Assert.Equal(new HttpError(504, "Gateway timeout: the request took longer than 00:00:05."), requestTimeout);
        Assert.Null(clientGone);
    }

    [Fact]
    public void Mapper_answers_an_argument_the_invoker_could_not_bind_400_but_a_method_s_own_ArgumentException_500()
    {
        // What the generated invoker throws for a JSON value of the wrong type (recognised by its mark, not by where it was thrown).
        var unbound = Assert.Throws<ArgumentException>(() => InvokerHelpers.Argument<int>([JsonDocument.Parse("\"x\"").RootElement], 0, "Add", "a"));
        var answer = Errors.CallFailed(unbound, "r1", cancelled: false, timedOut: false);
        var own = Errors.CallFailed(new ArgumentException("the method's own check"), "r2", cancelled: false, timedOut: false);

        Assert.Equal(400, answer!.Value.StatusCode);
        Assert.StartsWith("Bad request: Method 'Add' parameter 'a' expects System.Int32; the JSON value could not be read", answer.Value.Body);
        Assert.Equal(new HttpError(500, "Internal error; request id r2", LogError: true), own);
    }

    [Fact]
    public void Mapper_answers_anything_else_500_with_the_request_id_and_logs_it()
    {
        // A cancellation the request did not ask for, and user code's own I/O error, are the application's failures.
        foreach (var e in new Exception[] { new InvalidOperationException("bug"), new OperationCanceledException(), new IOException("disk") })
            Assert.Equal(new HttpError(500, "Internal error; request id r9", LogError: true), Errors.CallFailed(e, "r9", cancelled: false, timedOut: false));
    }

    // ---- ResultWriter -----------------------------------------------------------------------------------------

    private static string Written(HttpContext context) => Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());

    [Fact]
    public async Task Writer_writes_text_bytes_and_JSON_with_their_content_types()
    {
        var text = Request("GET");
        var bytes = Request("GET");
        var json = Request("GET");

        await ResultWriter.WriteResultAsync(text, AddCall, "hello", default);
        await ResultWriter.WriteResultAsync(bytes, AddCall, new byte[] { 65, 66 }, default);
        await ResultWriter.WriteResultAsync(json, AddCall, new { Sum = 3 }, default);

        Assert.Equal(("text/plain; charset=utf-8", "hello"), (text.Response.ContentType, Written(text)));
        Assert.Equal(("application/octet-stream", "AB", 2L), (bytes.Response.ContentType, Written(bytes), bytes.Response.ContentLength!.Value));
        Assert.Equal(("application/json; charset=utf-8", """{"sum":3}"""), (json.Response.ContentType, Written(json)));
    }

    [Fact]
    public async Task Writer_answers_an_error_as_text_with_Retry_After()
    {
        var context = Request("GET");

        await ResultWriter.ErrorAsync(context, new HttpError(503, "Service unavailable: busy.", RetryAfter: "1"));

        Assert.Equal((503, "1", "Service unavailable: busy.\n"), (context.Response.StatusCode, context.Response.Headers.RetryAfter.ToString(), Written(context)));
    }

    private static async IAsyncEnumerable<object?> Items()
    {
        yield return 1;
        await Task.Yield();
        yield return new { Word = "two" };
    }

    [Theory]
    [InlineData(false, "application/x-ndjson", "1\n{\"word\":\"two\"}\n")]
    [InlineData(true, "text/event-stream", "data: 1\n\ndata: {\"word\":\"two\"}\n\n")]
    public async Task Writer_streams_items_as_NDJSON_or_server_sent_events(bool sse, string contentType, string expected)
    {
        var context = Request("GET");
        var enumerator = Items().GetAsyncEnumerator();
        var any = await enumerator.MoveNextAsync();

        await ResultWriter.WriteStreamAsync(context, enumerator, any, sse, default);

        Assert.Equal((200, contentType, expected), (context.Response.StatusCode, context.Response.ContentType, Written(context)));
    }

    // ---- IngressRoute -----------------------------------------------------------------------------------------

    [Fact]
    public void Route_table_matches_the_longest_prefix_on_a_slash_boundary()
    {
        IngressRoute Route(string prefix, string app) => new(prefix, app, null!, null!);
        IngressRoute[] routes = [Route("/", "root"), Route("/api", "api"), Route("/api/v2/", "v2")];

        Assert.Equal("v2", IngressRoute.Match(routes, "/api/v2/items")!.Application);
        Assert.Equal("api", IngressRoute.Match(routes, "/api/v22")!.Application);
        Assert.Equal("root", IngressRoute.Match(routes, "/apix")!.Application);
        Assert.Null(IngressRoute.Match([Route("/api", "api")], "/other"));
        Assert.Equal("/items", routes[2].SubPath("/api/v2/items"));
        Assert.Equal("/", routes[1].SubPath("/api"));
    }
}
