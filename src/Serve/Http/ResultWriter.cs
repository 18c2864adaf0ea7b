using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Serve.CodeGeneration;

namespace Serve.Http;

/// <summary>
/// Writes what a call returned: an <see cref="IResult"/> as itself, text as text/plain, bytes and streams as
/// application/octet-stream, anything else as JSON; a stream of items as NDJSON or server-sent events; errors as text/plain.
/// </summary>
internal static class ResultWriter
{
    private static readonly byte[] NewLine = "\n"u8.ToArray();
    private static readonly byte[] SseData = "data: "u8.ToArray();
    private static readonly byte[] SseEnd = "\n\n"u8.ToArray();

    /// <summary>Answers <paramref name="status"/> with a line of text, unless the response has started.</summary>
    public static async Task TextAsync(HttpContext context, int status, string text)
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

    /// <summary>Answers an <see cref="HttpError"/> (its Retry-After included), unless the response has started.</summary>
    public static Task ErrorAsync(HttpContext context, HttpError error)
    {
        if (error.RetryAfter is { } retryAfter && !context.Response.HasStarted)
            context.Response.Headers.RetryAfter = retryAfter;
        return TextAsync(context, error.StatusCode, error.Body);
    }

    /// <summary>Writes the result of a value (or void) call.</summary>
    public static async Task WriteResultAsync(HttpContext context, DeploymentMethod method, object? result, CancellationToken cancellationToken)
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

    /// <summary>Whether the client asked for server-sent events rather than NDJSON.</summary>
    public static bool AcceptsEventStream(HttpRequest request) =>
        request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Writes a stream of items whose first <see cref="IAsyncEnumerator{T}.MoveNextAsync"/> returned <paramref name="any"/>:
    /// NDJSON (one JSON value per line) or SSE <c>data:</c> events, flushed after every item.
    /// </summary>
    public static async Task WriteStreamAsync(HttpContext context, IAsyncEnumerator<object?> enumerator, bool any, bool sse, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = sse ? "text/event-stream" : "application/x-ndjson";
        response.Headers.CacheControl = "no-cache";
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

    /// <summary>Ends a started SSE stream with an <c>error</c> event naming the request id.</summary>
    public static async Task WriteStreamErrorAsync(HttpContext context, string requestId)
    {
        var response = context.Response;
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
