using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Serve.CodeGeneration;

namespace Serve.Http;

/// <summary>The answer to a request that failed before anything was written: a status, a plain-text body, maybe a Retry-After.</summary>
/// <param name="StatusCode">The HTTP status code.</param>
/// <param name="Body">The plain-text body (without the trailing newline).</param>
/// <param name="RetryAfter">The Retry-After header value, or <c>null</c> for none.</param>
/// <param name="LogError">True when the exception is logged with the request id (the body then names the request id).</param>
internal readonly record struct HttpError(int StatusCode, string Body, string? RetryAfter = null, bool LogError = false);

/// <summary>
/// Maps the exception of a failed request to its answer: a binding failure to 400 (or 413 over the size limit), a
/// call's failure to 503/504/400/500, a cancellation to 504 at <see cref="HttpOptions.RequestTimeout"/> or to nothing
/// when the client went away (<c>null</c>: nobody is left to answer).
/// </summary>
internal sealed class HttpErrorMapper(TimeSpan? requestTimeout, long maxRequestBodySize)
{
    private const string InvalidJson = "Bad request: the body is not valid JSON: ";
    private const string InvalidJsonForParameter = "Bad request: the body is not valid JSON for the parameter: ";

    /// <summary>Whether <paramref name="e"/>, thrown while the arguments were bound, is the request's fault (or its cancellation).</summary>
    public static bool IsBindingFailure(Exception e, CancellationToken cancellationToken) =>
        e is RequestBindingException or JsonException or BadHttpRequestException or IOException
        || (e is OperationCanceledException && cancellationToken.IsCancellationRequested);

    /// <summary>The answer to a request whose arguments could not be read: 400 with the reason, 413, or the cancellation answer.</summary>
    /// <param name="error">What binding threw (one <see cref="IsBindingFailure"/> accepts).</param>
    /// <param name="endpointBody">True for an endpoint's <c>[FromBody]</c> parameter (its invalid JSON is reported as such).</param>
    /// <param name="timedOut">True when <see cref="HttpOptions.RequestTimeout"/> elapsed and the client is still there.</param>
    public HttpError? BindingFailed(Exception error, bool endpointBody, bool timedOut) => error switch
    {
        RequestBindingException e => new HttpError(StatusCodes.Status400BadRequest, "Bad request: " + e.Message),
        JsonException e => new HttpError(StatusCodes.Status400BadRequest, (endpointBody ? InvalidJsonForParameter : InvalidJson) + e.Message),
        BadHttpRequestException or IOException => Unreadable(error),
        _ => Cancelled(timedOut),
    };

    /// <summary>The answer to a call that failed before anything was written (shared by value and stream calls).</summary>
    /// <param name="e">What the call threw.</param>
    /// <param name="requestId">The request id, named in answers whose details are logged.</param>
    /// <param name="cancelled">True when the request's token (client gone or RequestTimeout) was cancelled.</param>
    /// <param name="timedOut">True when <see cref="HttpOptions.RequestTimeout"/> elapsed and the client is still there.</param>
    public HttpError? CallFailed(Exception e, string requestId, bool cancelled, bool timedOut) => e switch
    {
        BackPressureException =>
            new HttpError(StatusCodes.Status503ServiceUnavailable, "Service unavailable: the application is overloaded; retry later.", RetryAfter: "1"),
        // A handle call inside the application ran past its WithTimeout: the gateway's answer, with the details logged.
        TimeoutException =>
            new HttpError(StatusCodes.Status504GatewayTimeout, $"Gateway timeout: a call inside the application timed out; request id {requestId}", LogError: true),
        DeploymentUnavailableException =>
            new HttpError(StatusCodes.Status503ServiceUnavailable, "Service unavailable: the application is not taking requests."),
        // The deployment failed and has no replica: the reason is Serve's own message (which deployment, why, what to do).
        DeploymentFailedException failed =>
            new HttpError(StatusCodes.Status503ServiceUnavailable, "Service unavailable: " + failed.Message),
        // Kestrel refused the request (e.g. a malformed chunked body) while the method read it.
        BadHttpRequestException or IOException when IsFromKestrel(e) => Unreadable(e),
        // The replica stopped (update, scale-down, health) and cancelled this call after its graceful shutdown timeout.
        ReplicaStoppedException =>
            new HttpError(StatusCodes.Status503ServiceUnavailable,
                $"Service unavailable: the replica serving this request stopped before it finished; retry if the request is idempotent. Request id {requestId}",
                RetryAfter: "1", LogError: true),
        // The node running the call's replica failed (after the handle's retry, if RetryOnNodeFailure is on).
        ReplicaLostException =>
            new HttpError(StatusCodes.Status503ServiceUnavailable,
                $"Service unavailable: the node serving this request failed before it finished; retry if the request is idempotent. Request id {requestId}",
                RetryAfter: "1", LogError: true),
        // The method said its input is wrong (e.g. a tensor of the wrong shape): the client's fault, in the method's words.
        InvalidInputException =>
            new HttpError(StatusCodes.Status400BadRequest, "Bad request: " + e.Message),
        ArgumentException when InvokerHelpers.IsBindingFailure(e) =>
            new HttpError(StatusCodes.Status400BadRequest, "Bad request: " + e.Message),
        OperationCanceledException when cancelled => Cancelled(timedOut),
        _ => Internal(requestId),
    };

    /// <summary>The answer to a cancelled request: 504 at RequestTimeout; none when the client went away.</summary>
    public HttpError? Cancelled(bool timedOut) =>
        timedOut ? new HttpError(StatusCodes.Status504GatewayTimeout, $"Gateway timeout: the request took longer than {requestTimeout}.") : null;

    /// <summary>The answer to an unexpected failure: 500 naming the request id, with the exception logged.</summary>
    public static HttpError Internal(string requestId) =>
        new(StatusCodes.Status500InternalServerError, $"Internal error; request id {requestId}", LogError: true);

    /// <summary>
    /// The answer to a request Kestrel could not read: its <see cref="BadHttpRequestException"/> status (413 over the size
    /// limit), or 400 for an <see cref="IOException"/> (Kestrel throws one for an overflowing chunk size).
    /// </summary>
    private HttpError Unreadable(Exception error)
    {
        var status = error is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest;
        return new HttpError(status, status == StatusCodes.Status413PayloadTooLarge
            ? $"Payload too large: the request body exceeds {maxRequestBodySize} bytes."
            : "Bad request: the request body could not be read: " + error.Message);
    }

    /// <summary>An exception Kestrel threw while the request was read (not one of user code's own I/O errors).</summary>
    private static bool IsFromKestrel(Exception e) =>
        e is BadHttpRequestException || e.TargetSite?.DeclaringType?.Assembly == typeof(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions).Assembly;
}
