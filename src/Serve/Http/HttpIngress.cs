using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serve.Control;
using Serve.CodeGeneration;
using Serve.Observability;

namespace Serve.Http;

/// <summary>
/// The HTTP ingress: a Kestrel server that maps each request to a call of the ingress deployment of the application
/// whose route prefix is the longest match, through the same router as a handle call.
/// </summary>
internal sealed class HttpIngress : IAsyncDisposable
{
    private const string RequestIdHeader = "x-request-id";
    private const string ModelIdHeader = "serve_multiplexed_model_id";

    private readonly HttpOptions _options;
    private readonly ServeHost _host;
    private readonly ILogger _logger;
    private readonly ILogger _accessLog;
    private readonly ServeMetrics _metrics;
    private KestrelListener? _listener;

    private HttpIngress(HttpOptions options, ServeHost host, ILogger logger)
    {
        _options = options;
        _host = host;
        _logger = logger;
        _accessLog = host.AccessLogger;
        _metrics = host.Metrics;
    }

    /// <summary>The bound address (with the real port when <see cref="HttpOptions.Port"/> is 0).</summary>
    public Uri? Address => _listener?.Address;

    public static async Task<HttpIngress> StartAsync(HttpOptions options, ServeHost host, ILogger logger, CancellationToken cancellationToken)
    {
        var ingress = new HttpIngress(options, host, logger);
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
            if (_accessLog.IsEnabled(LogLevel.Information))
            {
                AccessLog.HttpRequest(_accessLog, context.Request.Method, context.Request.Path.Value ?? "/", status, milliseconds,
                    response.Headers[RequestIdHeader].ToString(), route?.Application ?? "-", route?.Deployment ?? "-", scope.ReplicaId ?? "-");
            }
        }
    }

    private async Task HandleAsync(HttpContext context, HttpRequestScope scope)
    {
        var request = context.Request;
        var response = context.Response;
        var requestId = RequestId(request);
        response.Headers[RequestIdHeader] = requestId;

        var route = Match(_host.Routes, request.Path.Value ?? "/");
        if (route is null)
        {
            await TextAsync(context, StatusCodes.Status404NotFound, "Not found: no application serves this path.").ConfigureAwait(false);
            return;
        }
        if (request.Headers[ModelIdHeader].ToString() is { Length: > 0 } modelId)
            route = route with { Handle = route.Handle.WithModelIdCore(modelId) };
        var handle = route.Handle;
        scope.Route = (route.Application, route.RoutePrefix, handle.DeploymentName);
        scope.AllowUnknownJsonProperties = route.AllowUnknownJsonProperties;

        if (handle.Definition.HttpEndpoints.Count > 0)
        {
            var subPath = SubPath(route.RoutePrefix, request.Path.Value ?? "/");
            var routes = HttpEndpointRoutes.For(handle.Definition);
            var matched = false;
            foreach (var endpoint in routes)
            {
                var values = new Microsoft.AspNetCore.Routing.RouteValueDictionary();
                if (!endpoint.Matcher.TryMatch(new PathString(subPath), values))
                    continue;
                matched = true;
                if (string.Equals(endpoint.Endpoint.Method, request.Method, StringComparison.OrdinalIgnoreCase))
                {
                    await EndpointAsync(context, route, requestId, endpoint, values).ConfigureAwait(false);
                    return;
                }
            }
            if (matched)
            {
                response.Headers.Allow = string.Join(", ", routes.Where(r => r.Matcher.TryMatch(new PathString(subPath), new Microsoft.AspNetCore.Routing.RouteValueDictionary()))
                    .Select(r => r.Endpoint.Method.ToUpperInvariant()).Distinct());
                await TextAsync(context, StatusCodes.Status405MethodNotAllowed, "Method not allowed: this endpoint takes " + response.Headers.Allow + ".").ConfigureAwait(false);
                return;
            }
            if (subPath != "/" || !handle.Definition.Methods.Any(m => m.IsCall))
            {
                await TextAsync(context, StatusCodes.Status404NotFound, "Not found: no endpoint of this application matches the path.").ConfigureAwait(false);
                return;
            }
        }

        var calls = handle.Definition.Methods.Where(m => m.IsCall).ToArray();
        if (calls.Length == 0)
        {
            await TextAsync(context, StatusCodes.Status404NotFound, "Not found: this application has no call method to serve over HTTP.").ConfigureAwait(false);
            return;
        }

        var isGet = HttpMethods.IsGet(request.Method);
        if (!isGet && !HttpMethods.IsPost(request.Method) && !HttpMethods.IsPut(request.Method))
        {
            response.Headers.Allow = "GET, POST, PUT";
            await TextAsync(context, StatusCodes.Status405MethodNotAllowed, "Method not allowed: use GET, POST or PUT.").ConfigureAwait(false);
            return;
        }

        using var timeout = _options.RequestTimeout is { } limit ? new CancellationTokenSource(limit) : null;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, timeout.Token);
        var cancellationToken = linked?.Token ?? context.RequestAborted;

        if (!Array.Exists(calls, TakesOnlyRequest) && Array.Exists(calls, m => m.ParameterTypes.Any(IsRequestType)))
        {
            await TextAsync(context, StatusCodes.Status501NotImplemented, "Not implemented: a call method taking HttpRequest or HttpContext together with other parameters is not served over HTTP; take only the HttpRequest and read the rest from it.").ConfigureAwait(false);
            return;
        }

        DeploymentMethod method;
        object?[] arguments;
        var takesRequest = false;
        try
        {
            // A call method that asks for the request itself gets it by reference (the replica is in-process).
            if (Array.Find(calls, TakesOnlyRequest) is { } raw)
                (method, arguments, takesRequest) = (raw, RequestArguments(raw, context), true);
            else if (isGet)
                (method, arguments) = BindQuery(calls, request.Query);
            else
                (method, arguments) = await BindBodyAsync(calls, request, route.AllowUnknownJsonProperties, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsBindingFailure(e, cancellationToken))
        {
            await BindingFailedAsync(context, e, "Bad request: the body is not valid JSON: ", timeout).ConfigureAwait(false);
            return;
        }



        if (method.Kind == DeploymentMethodKind.Stream)
        {
            await StreamAsync(context, route, requestId, handle.InvokeCallStreamAsync(arguments, cancellationToken), timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        object? result;
        try
        {
            // A method holding the live request is awaited to the end: the request must outlive it.
            var pending = handle.InvokeCallAsync(arguments, cancellationToken);
            result = await (takesRequest ? pending : WithinTimeoutAsync(pending, timeout, cancellationToken, context, route, requestId)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await CallFailedAsync(context, route, requestId, e, timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            await WriteResultAsync(context, method, result, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away while the result was being written.
        }
        catch (Exception e) when (!response.HasStarted)
        {
            Log.HttpRequestFailed(_logger, requestId, route.Application, request.Method, request.Path.Value ?? "/", e);
            await TextAsync(context, StatusCodes.Status500InternalServerError, $"Internal error; request id {requestId}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for a call, but with <see cref="HttpOptions.RequestTimeout"/> set no longer than the request may take: at the
    /// deadline the request is answered 504 even when the method ignores its token. The method then runs on in the
    /// background holding its slot until it returns; its late result is dropped and a late error logged.
    /// </summary>
    private ValueTask<object?> WithinTimeoutAsync(ValueTask<object?> pending, CancellationTokenSource? timeout, CancellationToken cancellationToken,
        HttpContext context, ServeController.RouteEntry route, string requestId) =>
        timeout is null || pending.IsCompleted ? pending : RaceAsync(pending.AsTask(), cancellationToken, context, route, requestId);

    private async ValueTask<object?> RaceAsync(Task<object?> call, CancellationToken cancellationToken, HttpContext context, ServeController.RouteEntry route, string requestId)
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

    private static string SubPath(string routePrefix, string path)
    {
        var prefix = Normalize(routePrefix);
        var rest = prefix == "/" ? path : path[prefix.Length..];
        return rest.Length == 0 ? "/" : rest;
    }

    /// <summary>Serves one <c>[HttpGet]</c>-style endpoint: binds route, query, header and body values, then calls through the router.</summary>
    private async Task EndpointAsync(HttpContext context, ServeController.RouteEntry route, string requestId, HttpEndpointRoutes.Route endpoint,
        Microsoft.AspNetCore.Routing.RouteValueDictionary values)
    {
        var request = context.Request;
        var response = context.Response;
        var method = endpoint.Method;
        if (method.ParameterTypes.Any(t => t == typeof(HttpRequest) || t == typeof(HttpContext)))
        {
            await TextAsync(context, StatusCodes.Status501NotImplemented, "Not implemented: an endpoint taking HttpRequest/HttpContext is not served yet; bind its values with [FromRoute], [FromQuery], [FromHeader] and [FromBody].").ConfigureAwait(false);
            return;
        }

        using var timeout = _options.RequestTimeout is { } limit ? new CancellationTokenSource(limit) : null;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, timeout.Token);
        var cancellationToken = linked?.Token ?? context.RequestAborted;

        var arguments = new object?[method.ParameterTypes.Length];
        try
        {
            var bindings = endpoint.Endpoint.Parameters;
            for (var i = 0; i < arguments.Length; i++)
            {
                var type = method.ParameterTypes[i];
                var binding = i < bindings.Length ? bindings[i] : new HttpParameterBinding { Source = HttpParameterSource.Auto, Name = method.ParameterNames[i] };
                var source = binding.Source;
                if (source == HttpParameterSource.Auto)
                    source = values.ContainsKey(binding.Name) ? HttpParameterSource.Route : HttpParameterSource.Query;
                string? text = source switch
                {
                    HttpParameterSource.Route => values.TryGetValue(binding.Name, out var v) ? Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) : null,
                    HttpParameterSource.Query => request.Query.TryGetValue(binding.Name, out var q) ? q.ToString() : null,
                    HttpParameterSource.Header => request.Headers.TryGetValue(binding.Name, out var h) ? h.ToString() : null,
                    _ => null,
                };
                if (source == HttpParameterSource.Body)
                {
                    using var buffer = new MemoryStream();
                    await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                    if (buffer.Length == 0)
                    {
                        if (!binding.HasDefault)
                            throw new BadRequest($"the request body is empty, but parameter '{method.ParameterNames[i]}' takes it as JSON.");
                        arguments[i] = binding.DefaultValue;
                        continue;
                    }
                    var json = route.AllowUnknownJsonProperties ? InvokerHelpers.LenientJson : InvokerHelpers.StrictJson;
                    arguments[i] = JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), type, json);
                    continue;
                }
                if (text is null)
                {
                    if (!binding.HasDefault)
                        throw new BadRequest($"missing {source.ToString().ToLowerInvariant()} value '{binding.Name}'.");
                    arguments[i] = binding.DefaultValue;
                    continue;
                }
                arguments[i] = ConvertText(text, type, binding.Name);
            }
        }
        catch (Exception e) when (IsBindingFailure(e, cancellationToken))
        {
            await BindingFailedAsync(context, e, "Bad request: the body is not valid JSON for the parameter: ", timeout).ConfigureAwait(false);
            return;
        }

        if (method.Kind == DeploymentMethodKind.Stream)
        {
            await StreamAsync(context, route, requestId, route.Handle.InvokeStreamByIdAsync(method.MethodId, arguments, cancellationToken), timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        object? result;
        try
        {
            result = await WithinTimeoutAsync(route.Handle.InvokeByIdAsync(method.MethodId, arguments, cancellationToken), timeout, cancellationToken, context, route, requestId).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await CallFailedAsync(context, route, requestId, e, timeout, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            await WriteResultAsync(context, method, result, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away while the result was being written.
        }
        catch (Exception e) when (!response.HasStarted)
        {
            Log.HttpRequestFailed(_logger, requestId, route.Application, request.Method, request.Path.Value ?? "/", e);
            await TextAsync(context, StatusCodes.Status500InternalServerError, $"Internal error; request id {requestId}").ConfigureAwait(false);
        }
    }

    private static object? ConvertText(string text, Type type, string name)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(string) || underlying == typeof(object))
            return text;
        try
        {
            return FromQueryValue(text, type).Deserialize(type, JsonSerializerOptions.Web);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or FormatException or InvalidOperationException)
        {
            throw new BadRequest($"'{text}' is not a valid {underlying.Name} for '{name}'.");
        }
    }

    /// <summary>Answers a call that failed before anything was written (the status mapping shared by value and stream calls).</summary>
    private async Task CallFailedAsync(HttpContext context, ServeController.RouteEntry route, string requestId, Exception e,
        CancellationTokenSource? timeout, CancellationToken cancellationToken)
    {
        var request = context.Request;
        switch (e)
        {
            case BackPressureException:
                context.Response.Headers.RetryAfter = "1";
                await TextAsync(context, StatusCodes.Status503ServiceUnavailable, "Service unavailable: the application is overloaded; retry later.").ConfigureAwait(false);
                return;
            case TimeoutException:
                // A handle call inside the application ran past its WithTimeout: the gateway's answer, with the details logged.
                Log.HttpRequestFailed(_logger, requestId, route.Application, request.Method, request.Path.Value ?? "/", e);
                await TextAsync(context, StatusCodes.Status504GatewayTimeout, $"Gateway timeout: a call inside the application timed out; request id {requestId}").ConfigureAwait(false);
                return;
            case DeploymentUnavailableException:
                await TextAsync(context, StatusCodes.Status503ServiceUnavailable, "Service unavailable: the application is not taking requests.").ConfigureAwait(false);
                return;
            case DeploymentFailedException failed:
                // The deployment failed and has no replica: the reason is Serve's own message (which deployment, why, what to do).
                await TextAsync(context, StatusCodes.Status503ServiceUnavailable, "Service unavailable: " + failed.Message).ConfigureAwait(false);
                return;
            case BadHttpRequestException or IOException when IsFromKestrel(e):
                // Kestrel refused the request (e.g. a malformed chunked body) while the method read it.
                await UnreadableRequestAsync(context, e).ConfigureAwait(false);
                return;
            case ReplicaStoppedException:
                // The replica stopped (update, scale-down, health) and cancelled this call after its graceful shutdown timeout.
                Log.HttpRequestFailed(_logger, requestId, route.Application, request.Method, request.Path.Value ?? "/", e);
                context.Response.Headers.RetryAfter = "1";
                await TextAsync(context, StatusCodes.Status503ServiceUnavailable, $"Service unavailable: the replica serving this request stopped before it finished; retry if the request is idempotent. Request id {requestId}").ConfigureAwait(false);
                return;
            case ArgumentException when e.TargetSite?.DeclaringType == typeof(InvokerHelpers):
                await TextAsync(context, StatusCodes.Status400BadRequest, "Bad request: " + e.Message).ConfigureAwait(false);
                return;
            case OperationCanceledException when cancellationToken.IsCancellationRequested:
                await CancelledAsync(context, timeout).ConfigureAwait(false);
                return;
            default:
                Log.HttpRequestFailed(_logger, requestId, route.Application, request.Method, request.Path.Value ?? "/", e);
                await TextAsync(context, StatusCodes.Status500InternalServerError, $"Internal error; request id {requestId}").ConfigureAwait(false);
                return;
        }
    }

    // ---- Streaming --------------------------------------------------------------------------------------------

    private static readonly byte[] NewLine = "\n"u8.ToArray();
    private static readonly byte[] SseData = "data: "u8.ToArray();
    private static readonly byte[] SseEnd = "\n\n"u8.ToArray();

    /// <summary>
    /// Streams a call method returning <c>IAsyncEnumerable&lt;T&gt;</c>: NDJSON (one JSON value per line), or server-sent
    /// events when the client accepts <c>text/event-stream</c>; flushed after every item. A failure before the first
    /// item is answered like any call; after it, it is logged and the response ends (SSE: an <c>error</c> event).
    /// </summary>
    private async Task StreamAsync(HttpContext context, ServeController.RouteEntry route, string requestId, IAsyncEnumerable<object?> stream,
        CancellationTokenSource? timeout, CancellationToken cancellationToken)
    {
        var request = context.Request;
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

            var sse = request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase);
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = sse ? "text/event-stream" : "application/x-ndjson";
            response.Headers.CacheControl = "no-cache";
            try
            {
                if (!any)
                {
                    await response.StartAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                do
                {
                    var item = enumerator.Current;
                    var json = JsonSerializer.SerializeToUtf8Bytes(item, item?.GetType() ?? typeof(object), JsonSerializerOptions.Web);
                    if (sse)
                    {
                        await response.Body.WriteAsync(SseData, cancellationToken).ConfigureAwait(false);
                        await response.Body.WriteAsync(json, cancellationToken).ConfigureAwait(false);
                        await response.Body.WriteAsync(SseEnd, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await response.Body.WriteAsync(json, cancellationToken).ConfigureAwait(false);
                        await response.Body.WriteAsync(NewLine, cancellationToken).ConfigureAwait(false);
                    }
                    await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                while (await enumerator.MoveNextAsync().ConfigureAwait(false));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException && cancellationToken.IsCancellationRequested)
            {
                // The client went away, or RequestTimeout elapsed mid-stream: the response just ends.
                if (!response.HasStarted)
                    await CancelledAsync(context, timeout).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Log.HttpRequestFailed(_logger, requestId, route.Application, request.Method, request.Path.Value ?? "/", e);
                if (!response.HasStarted)
                {
                    await TextAsync(context, StatusCodes.Status500InternalServerError, $"Internal error; request id {requestId}").ConfigureAwait(false);
                }
                else if (sse)
                {
                    try
                    {
                        var error = "event: error\ndata: " + JsonSerializer.Serialize(new { requestId }, JsonSerializerOptions.Web) + "\n\n";
                        await response.WriteAsync(error, context.RequestAborted).ConfigureAwait(false);
                        await response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                    }
                    catch (Exception write) when (write is OperationCanceledException or IOException)
                    {
                        // The client went away.
                    }
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

    /// <summary>The application whose route prefix is the longest match of <paramref name="path"/> on a '/' boundary.</summary>
    internal static ServeController.RouteEntry? Match(IReadOnlyList<ServeController.RouteEntry> applications, string path)
    {
        ServeController.RouteEntry? best = null;
        var bestLength = -1;
        foreach (var app in applications)
        {
            var prefix = Normalize(app.RoutePrefix);
            if (prefix.Length > bestLength && Matches(prefix, path))
            {
                best = app;
                bestLength = prefix.Length;
            }
        }
        return best;
    }

    private static string Normalize(string prefix)
    {
        if (string.IsNullOrEmpty(prefix))
            return "/";
        if (prefix[0] != '/')
            prefix = "/" + prefix;
        return prefix.Length > 1 ? prefix.TrimEnd('/') is { Length: > 0 } t ? t : "/" : prefix;
    }

    private static bool Matches(string prefix, string path)
    {
        if (prefix == "/")
            return true;
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        return path.Length == prefix.Length || path[prefix.Length] == '/';
    }

    private async Task CancelledAsync(HttpContext context, CancellationTokenSource? timeout)
    {
        if (timeout?.IsCancellationRequested == true && !context.RequestAborted.IsCancellationRequested)
            await TextAsync(context, StatusCodes.Status504GatewayTimeout, $"Gateway timeout: the request took longer than {_options.RequestTimeout}.").ConfigureAwait(false);
        // Otherwise the client went away: nobody is left to answer.
    }

    private static async Task TextAsync(HttpContext context, int status, string text)
    {
        var response = context.Response;
        if (response.HasStarted)
            return;
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        try
        {
            await response.WriteAsync(text + "\n", context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The client went away.
        }
    }

    private static bool IsBindingFailure(Exception e, CancellationToken cancellationToken) =>
        e is BadRequest or JsonException or BadHttpRequestException or IOException
        || (e is OperationCanceledException && cancellationToken.IsCancellationRequested);

    /// <summary>Answers a request whose arguments could not be read: 400 with the reason, 413, or the cancellation answer.</summary>
    private async Task BindingFailedAsync(HttpContext context, Exception error, string invalidJson, CancellationTokenSource? timeout)
    {
        switch (error)
        {
            case BadRequest e:
                await TextAsync(context, StatusCodes.Status400BadRequest, "Bad request: " + e.Message).ConfigureAwait(false);
                break;
            case JsonException e:
                await TextAsync(context, StatusCodes.Status400BadRequest, invalidJson + e.Message).ConfigureAwait(false);
                break;
            case BadHttpRequestException or IOException:
                await UnreadableRequestAsync(context, error).ConfigureAwait(false);
                break;
            default:
                await CancelledAsync(context, timeout).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>
    /// Answers a request Kestrel could not read: its <see cref="BadHttpRequestException"/> status (413 over the size
    /// limit), or 400 for an <see cref="IOException"/> (Kestrel throws one for an overflowing chunk size).
    /// </summary>
    private Task UnreadableRequestAsync(HttpContext context, Exception error)
    {
        var status = error is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest;
        return TextAsync(context, status, status == StatusCodes.Status413PayloadTooLarge
            ? $"Payload too large: the request body exceeds {_options.MaxRequestBodySize} bytes."
            : "Bad request: the request body could not be read: " + error.Message);
    }

    /// <summary>An exception Kestrel threw while the request was read (not one of user code's own I/O errors).</summary>
    private static bool IsFromKestrel(Exception e) =>
        e is BadHttpRequestException || e.TargetSite?.DeclaringType?.Assembly == typeof(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions).Assembly;

    private static bool IsRequestType(Type type) => type == typeof(HttpRequest) || type == typeof(HttpContext);

    private static bool TakesOnlyRequest(DeploymentMethod method) =>
        method.ParameterTypes.Length > 0 && Array.TrueForAll(method.ParameterTypes, IsRequestType);

    private static object?[] RequestArguments(DeploymentMethod method, HttpContext context)
    {
        var arguments = new object?[method.ParameterTypes.Length];
        for (var i = 0; i < arguments.Length; i++)
            arguments[i] = method.ParameterTypes[i] == typeof(HttpRequest) ? context.Request : context;
        return arguments;
    }

    private static async Task WriteResultAsync(HttpContext context, DeploymentMethod method, object? result, CancellationToken cancellationToken)
    {
        var response = context.Response;
        switch (result)
        {
            case IResult httpResult:
                await httpResult.ExecuteAsync(context).ConfigureAwait(false);
                return;
            case null when method.Kind == DeploymentMethodKind.Void:
                response.StatusCode = StatusCodes.Status204NoContent;
                return;
            case string text:
                response.ContentType = "text/plain; charset=utf-8";
                await response.WriteAsync(text, cancellationToken).ConfigureAwait(false);
                return;
            case byte[] bytes:
                response.ContentType = "application/octet-stream";
                response.ContentLength = bytes.Length;
                await response.Body.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                return;
            case Stream stream:
                await using (stream.ConfigureAwait(false))
                {
                    response.ContentType = "application/octet-stream";
                    await stream.CopyToAsync(response.Body, cancellationToken).ConfigureAwait(false);
                }
                return;
            default:
                response.ContentType = "application/json; charset=utf-8";
                await JsonSerializer.SerializeAsync(response.Body, result, result?.GetType() ?? typeof(object), JsonSerializerOptions.Web, cancellationToken).ConfigureAwait(false);
                return;
        }
    }

    // ---- Binding ----------------------------------------------------------------------------------------------

    private static (DeploymentMethod, object?[]) BindQuery(DeploymentMethod[] calls, IQueryCollection query)
    {
        // The call method with the most parameters that the query string covers.
        DeploymentMethod? chosen = null;
        foreach (var m in calls.OrderByDescending(m => m.ParameterNames.Length))
        {
            if (m.ParameterNames.All(query.ContainsKey))
            {
                chosen = m;
                break;
            }
        }
        if (chosen is null)
        {
            var m = calls.OrderBy(m => m.ParameterNames.Length).First();
            var missing = m.ParameterNames.First(n => !query.ContainsKey(n));
            throw new BadRequest($"missing query parameter '{missing}' (the call takes {Describe(m)}).");
        }
        var arguments = new object?[chosen.ParameterNames.Length];
        for (var i = 0; i < arguments.Length; i++)
            arguments[i] = FromQueryValue(query[chosen.ParameterNames[i]].ToString(), chosen.ParameterTypes[i]);
        return (chosen, arguments);
    }

    private static JsonElement FromQueryValue(string text, Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(string) || underlying == typeof(char) || underlying == typeof(Guid) || underlying == typeof(DateTime) ||
            underlying == typeof(DateTimeOffset) || underlying == typeof(DateOnly) || underlying == typeof(TimeOnly) || underlying == typeof(TimeSpan) ||
            underlying.IsEnum)
            return JsonSerializer.SerializeToElement(text);
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(text);
        }
    }

    private static async Task<(DeploymentMethod, object?[])> BindBodyAsync(DeploymentMethod[] calls, HttpRequest request, bool allowUnknown, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (buffer.Length == 0)
        {
            var none = calls.FirstOrDefault(m => m.ParameterNames.Length == 0);
            if (none is not null)
                return (none, []);
            var first = calls.OrderBy(m => m.ParameterNames.Length).First();
            throw new BadRequest($"the request body is empty, but the call takes {Describe(first)}; send a JSON array of the arguments or a JSON object with one property per parameter.");
        }

        using var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
        var root = document.RootElement;

        if (root.ValueKind == JsonValueKind.Array)
        {
            var single = calls.FirstOrDefault(m => m.ParameterNames.Length == 1 && IsSequence(m.ParameterTypes[0]));
            var byCount = calls.FirstOrDefault(m => m.ParameterNames.Length == root.GetArrayLength() && !(m.ParameterNames.Length == 1 && IsSequence(m.ParameterTypes[0])));
            if (single is not null && byCount is null)
                return (single, [root.Clone()]);
            if (byCount is not null)
                return (byCount, root.EnumerateArray().Select(e => (object?)e.Clone()).ToArray());
            throw new BadRequest($"the JSON array has {root.GetArrayLength()} element(s), but the call takes {Describe(calls[0])}.");
        }

        if (root.ValueKind == JsonValueKind.Object)
        {
            // A one-parameter call gets the whole object (ASP.NET Core binds one complex parameter from the body) unless
            // the object is a wrapper: its only property is named like the parameter and the parameter's type has no
            // property of that name.
            foreach (var m in calls.OrderByDescending(m => m.ParameterNames.Length))
            {
                if (m.ParameterNames.Length == 1 && !IsWrapper(root, m))
                    continue;
                if (m.ParameterNames.Length == 0)
                    continue;
                var arguments = new object?[m.ParameterNames.Length];
                var all = true;
                for (var i = 0; i < arguments.Length && all; i++)
                {
                    if (TryGetProperty(root, m.ParameterNames[i], out var value))
                        arguments[i] = value.Clone();
                    else
                        all = false;
                }
                if (all)
                {
                    if (!allowUnknown)
                        RefuseUnknownProperties(root, m);
                    return (m, arguments);
                }
            }
            var one = calls.FirstOrDefault(m => m.ParameterNames.Length == 1);
            if (one is not null)
                return (one, [root.Clone()]);
            var target = calls.OrderByDescending(m => m.ParameterNames.Length).First();
            var missing = target.ParameterNames.FirstOrDefault(n => !TryGetProperty(root, n, out _));
            throw new BadRequest(missing is null
                ? $"the call takes {Describe(target)}."
                : $"the JSON object has no property '{missing}' (the call takes {Describe(target)}).");
        }

        var scalar = calls.FirstOrDefault(m => m.ParameterNames.Length == 1);
        return scalar is not null
            ? (scalar, [root.Clone()])
            : throw new BadRequest($"a single JSON value was sent, but the call takes {Describe(calls[0])}; send a JSON array of the arguments or a JSON object with one property per parameter.");
    }

    private static bool IsWrapper(JsonElement root, DeploymentMethod method)
    {
        var name = method.ParameterNames[0];
        return CountProperties(root) == 1 && TryGetProperty(root, name, out _) && !HasJsonProperty(method.ParameterTypes[0], name);
    }

    /// <summary>Whether <paramref name="type"/> reads as a JSON object with a property called <paramref name="name"/> (any case).</summary>
    private static bool HasJsonProperty(Type type, string name)
    {
        JsonTypeInfo info;
        try
        {
            info = InvokerHelpers.StrictJson.GetTypeInfo(Nullable.GetUnderlyingType(type) ?? type);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return false; // not serializable as JSON: the invoker reports it
        }
        if (info.Kind != JsonTypeInfoKind.Object)
            return false;
        foreach (var property in info.Properties)
        {
            if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    /// <summary>A JSON object of arguments by name may hold only the method's parameter names (unless the deployment allows unknown properties).</summary>
    private static void RefuseUnknownProperties(JsonElement root, DeploymentMethod method)
    {
        foreach (var property in root.EnumerateObject())
        {
            var known = false;
            foreach (var name in method.ParameterNames)
                known |= string.Equals(name, property.Name, StringComparison.OrdinalIgnoreCase);
            if (!known)
                throw new BadRequest($"the JSON object has a property '{property.Name}' that is not a parameter of the call (it takes {Describe(method)}); " +
                                     "remove it, or set AllowUnknownJsonProperties on the deployment to ignore unknown properties.");
        }
    }

    private static int CountProperties(JsonElement obj)
    {
        var n = 0;
        foreach (var _ in obj.EnumerateObject())
            n++;
        return n;
    }

    private static bool TryGetProperty(JsonElement obj, string name, out JsonElement value)
    {
        if (obj.TryGetProperty(name, out value))
            return true;
        foreach (var p in obj.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                value = p.Value;
                return true;
            }
        }
        value = default;
        return false;
    }

    private static bool IsSequence(Type type) =>
        type != typeof(string) && (type.IsArray || type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>)));

    private static string Describe(DeploymentMethod method) =>
        method.ParameterNames.Length == 0
            ? "no arguments"
            : $"{method.ParameterNames.Length} argument(s): " + string.Join(", ", method.ParameterNames.Select((n, i) => $"{n} ({method.ParameterTypes[i].Name})"));

    private sealed class BadRequest(string message) : Exception(message);
}
