using Serve.Replicas;

namespace Serve.Observability;

/// <summary>
/// What the HTTP ingress learns about the request it is serving while the call runs: which replica took it. Flows
/// with the request's execution context; the first replica acquired on the untyped (HTTP) call path is the ingress
/// replica, and calls that replica makes to other deployments leave it alone.
/// </summary>
internal sealed class HttpRequestScope
{
    private static readonly AsyncLocal<HttpRequestScope?> s_current = new();

    public string? ReplicaId { get; private set; }

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

    /// <summary>Called by the untyped call path after it acquired a replica; one AsyncLocal read.</summary>
    public static void OnAcquired(IReplica replica)
    {
        if (s_current.Value is { ReplicaId: null } scope)
            scope.ReplicaId = replica.ReplicaId;
    }
}
