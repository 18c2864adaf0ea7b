using Microsoft.Extensions.Logging;

namespace Serve;

internal static partial class Log
{
    [LoggerMessage(20, LogLevel.Information, "Serve HTTP ingress listening on {Address}.")]
    public static partial void HttpListening(ILogger logger, string address);

    [LoggerMessage(21, LogLevel.Error, "HTTP request {RequestId} ({Method} {Path}) to application '{Application}' failed.")]
    public static partial void HttpRequestFailed(ILogger logger, string requestId, string application, string method, string path, Exception exception);

    [LoggerMessage(23, LogLevel.Warning, "HTTP request {RequestId} ({Method} {Path}) to application '{Application}' was answered 504 at RequestTimeout; its call failed afterwards.")]
    public static partial void HttpLateCallFailed(ILogger logger, string requestId, string application, string method, string path, Exception exception);

    [LoggerMessage(22, LogLevel.Information, "Serve admin API listening on {Address}.")]
    public static partial void AdminListening(ILogger logger, string address);
}

internal static partial class AccessLog
{
    /// <summary>The logger category of the per-request access log; filter it separately from the host's "Serve" log.</summary>
    public const string Category = "Serve.Access";

    [LoggerMessage(30, LogLevel.Information, "{Method} {Path} {StatusCode} {DurationMs:0.###} ms request {RequestId} application {Application} deployment {Deployment} replica {Replica}")]
    public static partial void HttpRequest(ILogger logger, string method, string path, int statusCode, double durationMs, string requestId, string application, string deployment, string replica);
}
