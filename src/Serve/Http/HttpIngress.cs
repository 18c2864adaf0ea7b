using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Serve.CodeGeneration;
using Serve.Observability;

namespace Serve.Http;

/// <summary>
/// The HTTP ingress: a Kestrel server that maps each request to a call of the ingress deployment of the application
/// whose route prefix is the longest match, through the same router as a handle call. It only wires the parts:
/// <see cref="IngressRoute"/> matches the path, <see cref="RequestBinder"/> binds the arguments,
/// <see cref="ResultWriter"/> writes the result and <see cref="HttpErrorMapper"/> answers failures; around them it
/// records the request's metrics and access log line.
/// </summary>
internal sealed class HttpIngress : IAsyncDisposable
{
    private const string RequestIdHeader = "x-request-id";
    private const string ModelIdHeader = "serve_multiplexed_model_id";

    private readonly HttpOptions _options;
    private readonly Func<IReadOnlyList<IngressRoute>> _routes;
    private readonly ILogger _logger;
    private readonly ILogger _accessLog;
    private readonly ServeMetrics _metrics;
    private readonly HttpErrorMapper _errors;
    private KestrelListener? _listener;

    private HttpIngress(HttpOptions options, Func<IReadOnlyList<IngressRoute>> routes, ServeMetrics metrics, ILogger logger, ILogger accessLog)
    {
        _options = options;
        _routes = routes;
        _logger = logger;
        _accessLog = accessLog;
        _metrics = metrics;
        _errors = new HttpErrorMapper(options.RequestTimeout, options.MaxRequestBodySize);
    }

    /// <summary>The bound address (with the real port when <see cref="HttpOptions.Port"/> is 0).</summary>
    public Uri? Address => _listener?.Address;

    /// <summary>Starts listening.</summary>
    /// <param name="options">The ingress options.</param>
    /// <param name="routes">The current route table, as the controller publishes it (read once per request).</param>
    /// <param name="metrics">Where each request's HTTP metrics go.</param>
    /// <param name="logger">The host's log (listening, failed requests).</param>
    /// <param name="accessLog">The access log (one line per request).</param>
    /// <param name="cancellationToken">Cancels starting.</param>
    public static async Task<HttpIngress> StartAsync(HttpOptions options, Func<IReadOnlyList<IngressRoute>> routes, ServeMetrics metrics,
        ILogger logger, ILogger accessLog, CancellationToken cancellationToken)
    {
        var ingress = new HttpIngress(options, routes, metrics, logger, accessLog);
        try
        {
            await ingress.StartCoreAsync(cancellationToken).ConfigureAwait(false);
            return ingress;
        }
        catch
        {
            await ingress.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        var address = KestrelListener.ParseHost(_options.Host, "ServeOptions.Http.Host");
        _listener = await KestrelListener.StartAsync(address, _options.Port, _options.MaxRequestBodySize, ObserveAsync, "HTTP ingress",
            "set o.Http.Port to a free port (or 0 to pick one), or o.Http.Enabled = false to run without HTTP.", cancellationToken).ConfigureAwait(false);
        Log.HttpListening(_logger, _listener.Address.ToString());
    }

    public ValueTask DisposeAsync() => Interlocked.Exchange(ref _listener, null)?.DisposeAsync() ?? ValueTask.CompletedTask;

    // ---- One request ------------------------------------------------------------------------------------------

    /// <summary>Serves one request, then records its HTTP metrics and writes its access log line.</summary>
    private async Task ObserveAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var scope = HttpRequestScope.Begin();
        var activity = ServeTracing.StartHttp(context.Request);
        var threw = false;
        try
        {
            await HandleAsync(context, scope).ConfigureAwait(false);
        }
        catch
        {
            threw = true;
            throw;
        }
        finally
        {
            var milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var response = context.Response;
            var status = threw && !response.HasStarted ? StatusCodes.Status500InternalServerError : response.StatusCode;
            var route = scope.Route;
            _metrics.RecordHttp(route?.Application ?? "", route?.RoutePrefix ?? "", context.Request.Method, status, milliseconds);
            if (activity is not null)
                ServeTracing.StopHttp(activity, context.Request.Method, status, route?.Application, route?.RoutePrefix, response.Headers[RequestIdHeader].ToString());
            if (_accessLog.IsEnabled(LogLevel.Information))
            {
                AccessLog.HttpRequest(_accessLog, context.Request.Method, context.Request.Path.Value ?? "/", status, milliseconds,
                    response.Headers[RequestIdHeader].ToString(), route?.Application ?? "-", route?.Deployment ?? "-", scope.Receipt.ReplicaId ?? "-");
            }
        }
    }

    private async Task HandleAsync(HttpContext context, HttpRequestScope scope)
    {
        var request = context.Request;
        var response = context.Response;
        var requestId = RequestId(request);
        response.Headers[RequestIdHeader] = requestId;

        var route = IngressRoute.Match(_routes(), request.Path.Value ?? "/");
        if (route is null)
        {
            await ResultWriter.TextAsync(context, StatusCodes.Status404NotFound, "Not found: no application serves this path.").ConfigureAwait(false);
            return;
        }
        if (request.Headers[ModelIdHeader].ToString() is { Length: > 0 } modelId)
            route = route with { Handle = route.Handle.WithModelIdCore(modelId) };
        var handle = route.Handle;
        scope.Route = (route.Application, route.RoutePrefix, handle.DeploymentName);
        scope.AllowUnknownJsonProperties = route.AllowUnknownJsonProperties;

        if (handle.Definition.HttpEndpoints.Count > 0)
        {
            var subPath = route.SubPath(request.Path.Value ?? "/");
            var routes = HttpEndpointRoutes.For(handle.Definition);
            var matched = false;
            foreach (var endpoint in routes)
            {
                var values = new RouteValueDictionary();
                if (!endpoint.Matcher.TryMatch(new PathString(subPath), values))
                    continue;
                matched = true;
                if (string.Equals(endpoint.Endpoint.Method, request.Method, StringComparison.OrdinalIgnoreCase))
                {
                    await EndpointAsync(context, route, requestId, endpoint, values, scope.Receipt).ConfigureAwait(false);
                    return;
                }
            }
            if (matched)
            {
                response.Headers.Allow = string.Join(", ", routes.Where(r => r.Matcher.TryMatch(new PathString(subPath), new RouteValueDictionary()))
                    .Select(r => r.Endpoint.Method.ToUpperInvariant()).Distinct());
                await ResultWriter.TextAsync(context, StatusCodes.Status405MethodNotAllowed, "Method not allowed: this endpoint takes " + response.Headers.Allow + ".").ConfigureAwait(false);
                return;
            }
            if (subPath != "/" || !handle.Definition.Methods.Any(m => m.IsCall))
            {
                await ResultWriter.TextAsync(context, StatusCodes.Status404NotFound, "Not found: no endpoint of this application matches the path.").ConfigureAwait(false);
                return;
            }
        }

        var calls = handle.Definition.Methods.Where(m => m.IsCall).ToArray();
        if (calls.Length == 0)
        {
            await ResultWriter.TextAsync(context, StatusCodes.Status404NotFound, "Not found: this application has no call method to serve over HTTP.").ConfigureAwait(false);
            return;
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsPost(request.Method) && !HttpMethods.IsPut(request.Method))
        {
            response.Headers.Allow = "GET, POST, PUT";
            await ResultWriter.TextAsync(context, StatusCodes.Status405MethodNotAllowed, "Method not allowed: use GET, POST or PUT.").ConfigureAwait(false);
            return;
        }

        using var timeout = _options.RequestTimeout is { } limit ? new CancellationTokenSource(limit) : null;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, timeout.Token);
        var cancellationToken = linked?.Token ?? context.RequestAborted;

        if (!Array.Exists(calls, RequestBinder.TakesOnlyRequest) && Array.Exists(calls, m => m.ParameterTypes.Any(RequestBinder.IsRequestType)))
        {
            await ResultWriter.TextAsync(context, StatusCodes.Status501NotImplemented, "Not implemented: a call method taking HttpRequest or HttpContext together with other parameters is not served over HTTP; take only the HttpRequest and read the rest from it.").ConfigureAwait(false);
            return;
        }

        DeploymentMethod method;
        object?[] arguments;
        bool takesRequest;
        try
        {
            (method, arguments, takesRequest) = await RequestBinder.BindCallAsync(calls, context, route.AllowUnknownJsonProperties, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (HttpErrorMapper.IsBindingFailure(e, cancellationToken))
        {
            await AnswerAsync(context, _errors.BindingFailed(e, endpointBody: false, TimedOut(context, timeout)), route, requestId, e).ConfigureAwait(false);
            return;
        }

        if (method.Kind == DeploymentMethodKind.Stream)
        {
            await StreamAsync(context, route, requestId, handle.InvokeCallStreamAsync(arguments, cancellationToken, scope.Receipt), timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        object? result;
        try
        {
            // A method holding the live request is awaited to the end: the request must outlive it.
            // With a RequestTimeout the method runs off this thread, so the 504 can go out at the deadline even when it blocks.
            var pending = handle.InvokeCallAsync(arguments, cancellationToken, offCaller: timeout is not null && !takesRequest, scope.Receipt);
            result = await (takesRequest ? pending : WithinTimeoutAsync(pending, timeout, cancellationToken, context, route, requestId)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await CallFailedAsync(context, route, requestId, e, timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        await WriteResultAsync(context, route, requestId, method, result, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Serves one <c>[HttpGet]</c>-style endpoint: binds route, query, header and body values, then calls through the router.</summary>
    private async Task EndpointAsync(HttpContext context, IngressRoute route, string requestId, HttpEndpointRoutes.Route endpoint, RouteValueDictionary values, CallReceipt receipt)
    {
        var method = endpoint.Method;
        if (method.ParameterTypes.Any(RequestBinder.IsRequestType))
        {
            await ResultWriter.TextAsync(context, StatusCodes.Status501NotImplemented, "Not implemented: an endpoint taking HttpRequest/HttpContext is not served yet; bind its values with [FromRoute], [FromQuery], [FromHeader] and [FromBody].").ConfigureAwait(false);
            return;
        }

        using var timeout = _options.RequestTimeout is { } limit ? new CancellationTokenSource(limit) : null;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, timeout.Token);
        var cancellationToken = linked?.Token ?? context.RequestAborted;

        object?[] arguments;
        try
        {
            arguments = await RequestBinder.BindEndpointAsync(endpoint, values, context.Request, route.AllowUnknownJsonProperties, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (HttpErrorMapper.IsBindingFailure(e, cancellationToken))
        {
            await AnswerAsync(context, _errors.BindingFailed(e, endpointBody: true, TimedOut(context, timeout)), route, requestId, e).ConfigureAwait(false);
            return;
        }

        if (method.Kind == DeploymentMethodKind.Stream)
        {
            await StreamAsync(context, route, requestId, route.Handle.InvokeStreamByIdAsync(method.MethodId, arguments, cancellationToken, receipt), timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        object? result;
        try
        {
            result = await WithinTimeoutAsync(route.Handle.InvokeByIdAsync(method.MethodId, arguments, cancellationToken, offCaller: timeout is not null, receipt), timeout, cancellationToken, context, route, requestId).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await CallFailedAsync(context, route, requestId, e, timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        await WriteResultAsync(context, route, requestId, method, result, cancellationToken).ConfigureAwait(false);
    }

    private async Task WriteResultAsync(HttpContext context, IngressRoute route, string requestId, DeploymentMethod method, object? result, CancellationToken cancellationToken)
    {
        try
        {
            await ResultWriter.WriteResultAsync(context, method, result, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away while the result was being written.
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            await AnswerAsync(context, HttpErrorMapper.Internal(requestId), route, requestId, e).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for a call, but with <see cref="HttpOptions.RequestTimeout"/> set no longer than the request may take: at the
    /// deadline the request is answered 504 even when the method ignores its token. The method then runs on in the
    /// background holding its slot until it returns; its late result is dropped and a late error logged.
    /// </summary>
    private ValueTask<object?> WithinTimeoutAsync(ValueTask<object?> pending, CancellationTokenSource? timeout, CancellationToken cancellationToken,
        HttpContext context, IngressRoute route, string requestId) =>
        timeout is null || pending.IsCompleted ? pending : RaceAsync(pending.AsTask(), cancellationToken, context, route, requestId);

    private async ValueTask<object?> RaceAsync(Task<object?> call, CancellationToken cancellationToken, HttpContext context, IngressRoute route, string requestId)
    {
        try
        {
            return await call.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The call's outcome now has nobody to read it. Method and path are read now: the HttpContext is recycled
            // once the request is answered.
            var request = context.Request;
            _ = ObserveLateAsync(call, requestId, route.Application, request.Method, request.Path.Value ?? "/");
            throw;
        }
    }

    private async Task ObserveLateAsync(Task<object?> call, string requestId, string application, string method, string path)
    {
        try
        {
            if (await call.ConfigureAwait(false) is Stream stream)
                await stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The method saw its cancelled token: the expected end of an abandoned call.
        }
        catch (Exception e)
        {
            Log.HttpLateCallFailed(_logger, requestId, application, method, path, e);
        }
    }

    /// <summary>Answers a call that failed before anything was written (the status mapping shared by value and stream calls).</summary>
    private Task CallFailedAsync(HttpContext context, IngressRoute route, string requestId, Exception e, CancellationTokenSource? timeout, CancellationToken cancellationToken) =>
        AnswerAsync(context, _errors.CallFailed(e, requestId, cancellationToken.IsCancellationRequested, TimedOut(context, timeout)), route, requestId, e);

    /// <summary>Logs the failure when the mapping says so, then writes the answer (none when the client went away).</summary>
    private Task AnswerAsync(HttpContext context, HttpError? error, IngressRoute route, string requestId, Exception e)
    {
        if (error is not { } answer)
            return Task.CompletedTask;
        if (answer.LogError)
        {
            Log.HttpRequestFailed(_logger, requestId, route.Application, context.Request.Method, context.Request.Path.Value ?? "/", e);
            RecordError(context, route, requestId, answer.StatusCode, e);
        }
        return ResultWriter.ErrorAsync(context, answer);
    }

    /// <summary>Keeps a logged failure for the dashboard's recent errors (the exception's type and first line, not its stack).</summary>
    private void RecordError(HttpContext context, IngressRoute route, string requestId, int statusCode, Exception e)
    {
        var message = e.Message.AsSpan();
        if (message.IndexOfAny('\r', '\n') is var end and >= 0)
            message = message[..end];
        if (message.Length > 300)
            message = message[..300];
        _metrics.Recent.RecordError(new RecentError(DateTimeOffset.UtcNow, requestId, route.Application, route.Handle.DeploymentName,
            context.Request.Method, context.Request.Path.Value ?? "/", statusCode, $"{e.GetType().Name}: {message}"));
    }

    /// <summary>True when RequestTimeout elapsed while the client is still there (so a 504 has someone to read it).</summary>
    private static bool TimedOut(HttpContext context, CancellationTokenSource? timeout) =>
        timeout?.IsCancellationRequested == true && !context.RequestAborted.IsCancellationRequested;

    // ---- Streaming --------------------------------------------------------------------------------------------

    /// <summary>
    /// Streams a call method returning <c>IAsyncEnumerable&lt;T&gt;</c>: NDJSON (one JSON value per line), or server-sent
    /// events when the client accepts <c>text/event-stream</c>; flushed after every item. A failure before the first
    /// item is answered like any call; after it, it is logged and the response ends (SSE: an <c>error</c> event).
    /// </summary>
    private async Task StreamAsync(HttpContext context, IngressRoute route, string requestId, IAsyncEnumerable<object?> stream,
        CancellationTokenSource? timeout, CancellationToken cancellationToken)
    {
        var response = context.Response;
        var enumerator = stream.GetAsyncEnumerator(cancellationToken);
        try
        {
            bool any;
            try
            {
                any = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                await CallFailedAsync(context, route, requestId, e, timeout, cancellationToken).ConfigureAwait(false);
                return;
            }

            var sse = ResultWriter.AcceptsEventStream(context.Request);
            try
            {
                await ResultWriter.WriteStreamAsync(context, enumerator, any, sse, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException && cancellationToken.IsCancellationRequested)
            {
                // The client went away, or RequestTimeout elapsed mid-stream: the response just ends.
                if (!response.HasStarted)
                    await AnswerAsync(context, _errors.Cancelled(TimedOut(context, timeout)), route, requestId, e).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                if (!response.HasStarted)
                {
                    await AnswerAsync(context, HttpErrorMapper.Internal(requestId), route, requestId, e).ConfigureAwait(false);
                }
                else
                {
                    Log.HttpRequestFailed(_logger, requestId, route.Application, context.Request.Method, context.Request.Path.Value ?? "/", e);
                    RecordError(context, route, requestId, response.StatusCode, e);
                    if (sse)
                        await ResultWriter.WriteStreamErrorAsync(context, requestId).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            // Ends the replica's stream (cancelling it when it did not finish) and frees its slot.
            await enumerator.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string RequestId(HttpRequest request)
    {
        var sent = request.Headers[RequestIdHeader].ToString();
        return sent.Length is > 0 and <= 200 && sent.All(c => c is > ' ' and < (char)127)
            ? sent
            : Guid.NewGuid().ToString("N");
    }
}
