using System.Diagnostics;
using System.Runtime.CompilerServices;
using Serve.Replicas;

namespace Serve.Observability;

/// <summary>
/// Serve's spans, on the <see cref="ActivitySource"/> named <see cref="ServeDiagnostics.ActivitySourceName"/>: one per
/// handle call (typed, untyped, stream), one per HTTP request, one per batch (linked to the calls it serves). Each starts
/// only when a listener samples it; with no listener the call path pays one field read.
/// </summary>
internal static class ServeTracing
{
    public static readonly ActivitySource Source = new(ServeDiagnostics.ActivitySourceName, typeof(ServeTracing).Assembly.GetName().Version?.ToString());

    public const string ApplicationTag = "serve.application";
    public const string DeploymentTag = "serve.deployment";
    public const string MethodTag = "serve.method";
    public const string ReplicaTag = "serve.replica";
    public const string ModelIdTag = "serve.model_id";
    public const string QueuedMsTag = "serve.queued_ms";
    public const string BatchSizeTag = "serve.batch_size";
    public const string RequestIdTag = "serve.request_id";

    /// <summary>True when someone listens to Serve's spans: the only cost on the call path when nobody does.</summary>
    public static bool Enabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Source.HasListeners();
    }

    /// <summary>
    /// Starts the span of a handle call to method <paramref name="methodId"/> (it becomes <see cref="Activity.Current"/>
    /// for the rest of the calling async method, so calls the replica makes are its children); null when not sampled.
    /// </summary>
    public static Activity? StartCall(DeploymentHandle handle, int methodId)
    {
        if (!Source.HasListeners())
            return null;
        var method = MethodName(handle, methodId);
        var activity = Source.StartActivity(handle.DeploymentName + "." + method, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(ApplicationTag, handle.ApplicationName);
            activity.SetTag(DeploymentTag, handle.DeploymentName);
            activity.SetTag(MethodTag, method);
            if (handle.ModelId is { } modelId)
                activity.SetTag(ModelIdTag, modelId);
        }
        return activity;
    }

    /// <summary>Records the replica that took the call and how long the call waited for it.</summary>
    public static void Acquired(Activity? activity, IReplica replica)
    {
        if (activity is not { IsAllDataRequested: true })
            return;
        activity.SetTag(ReplicaTag, replica.ReplicaId);
        activity.SetTag(QueuedMsTag, (DateTime.UtcNow - activity.StartTimeUtc).TotalMilliseconds);
    }

    /// <summary>Marks a span failed with the exception's type and message.</summary>
    public static void Failed(Activity? activity, Exception error)
    {
        if (activity is null)
            return;
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        if (activity.IsAllDataRequested)
            activity.SetTag("error.type", error.GetType().FullName);
    }

    /// <summary>
    /// The span of one batch of a <c>[Batch]</c> method, linked to the spans of the calls it serves (a batch has many
    /// parents, so it is the root of its own trace, as OpenTelemetry's messaging conventions do for batch processing).
    /// </summary>
    public static Activity? StartBatch(string methodName, int size, IEnumerable<ActivityLink>? links)
    {
        if (!Source.HasListeners())
            return null;
        var activity = Source.StartActivity(ActivityKind.Internal, parentContext: default, tags: null, links: links, name: "batch " + methodName);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(MethodTag, methodName);
            activity.SetTag(BatchSizeTag, size);
        }
        return activity;
    }

    /// <summary>
    /// Starts the server span of one HTTP request: a child of the ASP.NET Core span when one is current, else of the
    /// W3C <c>traceparent</c>/<c>tracestate</c> the client sent, else a new trace. Null when not sampled.
    /// </summary>
    public static Activity? StartHttp(Microsoft.AspNetCore.Http.HttpRequest request)
    {
        if (!Source.HasListeners())
            return null;
        ActivityContext parent = default;
        if (Activity.Current is null && request.Headers.TraceParent.ToString() is { Length: > 0 } traceParent)
            ActivityContext.TryParse(traceParent, request.Headers.TraceState.ToString(), isRemote: true, out parent);
        var activity = Source.StartActivity(ActivityKind.Server, parent, name: "HTTP " + request.Method);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("http.request.method", request.Method);
            activity.SetTag("url.path", request.Path.Value);
        }
        return activity;
    }

    /// <summary>Completes an HTTP request's span with what the access log records.</summary>
    public static void StopHttp(Activity activity, string method, int statusCode, string? application, string? routePrefix, string requestId)
    {
        activity.DisplayName = routePrefix is null ? method : method + " " + routePrefix;
        if (activity.IsAllDataRequested)
        {
            activity.SetTag("http.response.status_code", statusCode);
            activity.SetTag(RequestIdTag, requestId);
            if (application is not null)
                activity.SetTag(ApplicationTag, application);
            if (routePrefix is not null)
                activity.SetTag("http.route", routePrefix);
        }
        if (statusCode >= 500)
            activity.SetStatus(ActivityStatusCode.Error);
        activity.Stop();
    }

    private static string MethodName(DeploymentHandle handle, int methodId)
    {
        foreach (var m in handle.Definition.Methods)
        {
            if (m.MethodId == methodId)
                return m.Name;
        }
        return methodId.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
