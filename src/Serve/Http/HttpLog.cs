using Microsoft.Extensions.Logging;

namespace Serve;

internal static partial class Log
{
    [LoggerMessage(20, LogLevel.Information, "Serve HTTP ingress listening on {Address}.")]
    public static partial void HttpListening(ILogger logger, string address);

    [LoggerMessage(21, LogLevel.Error, "HTTP request {RequestId} ({Method} {Path}) to application '{Application}' failed.")]
    public static partial void HttpRequestFailed(ILogger logger, string requestId, string application, string method, string path, Exception exception);

    [LoggerMessage(22, LogLevel.Information, "Serve admin API listening on {Address}.")]
    public static partial void AdminListening(ILogger logger, string address);
}
