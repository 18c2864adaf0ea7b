namespace Serve.Observability;

/// <summary>
/// What the HTTP ingress knows about the request it is serving: the matched route, the ingress deployment's JSON
/// leniency (read by the generated invoker while it binds arguments) and the receipt of its call (which replica took
/// it, for the access log). Flows with the request's execution context.
/// </summary>
internal sealed class HttpRequestScope
{
    private static readonly AsyncLocal<HttpRequestScope?> s_current = new();

    /// <summary>Filled by the request's call with the replica that took it; calls that replica makes have receipts of their own.</summary>
    public CallReceipt Receipt { get; } = new();

    /// <summary>The scope of the request this code runs for, or null outside an HTTP request.</summary>
    public static HttpRequestScope? Current => s_current.Value;

    /// <summary>
    /// The ingress deployment's <see cref="DeploymentOptions.AllowUnknownJsonProperties"/>, read by the generated
    /// invoker when it deserializes the request's JSON arguments.
    /// </summary>
    public bool AllowUnknownJsonProperties { get; set; }

    /// <summary>The matched application, its route prefix and ingress deployment; null until a route matched.</summary>
    public (string Application, string RoutePrefix, string Deployment)? Route { get; set; }

    /// <summary>Makes a scope current for the rest of the calling async method (and what it calls).</summary>
    public static HttpRequestScope Begin()
    {
        var scope = new HttpRequestScope();
        s_current.Value = scope;
        return scope;
    }
}
