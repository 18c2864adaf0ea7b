using Serve.Routing;

namespace Serve.Http;

/// <summary>
/// One application's HTTP route as the controller publishes it: its prefix, a handle to its ingress deployment and how
/// strictly its JSON is read. The ingress matches each request's path against the published table.
/// </summary>
internal sealed record IngressRoute(string RoutePrefix, string Application, DeploymentEndpoint Ingress, DeploymentHandle Handle, bool AllowUnknownJsonProperties = false)
{
    // Normalized once here (RoutePrefixes' rule), not for every route on every request.
    private readonly string _prefix = RoutePrefixes.Normalize(RoutePrefix);

    /// <summary>The application whose route prefix is the longest match of <paramref name="path"/> on a '/' boundary.</summary>
    public static IngressRoute? Match(IReadOnlyList<IngressRoute> applications, string path)
    {
        IngressRoute? best = null;
        var bestLength = -1;
        foreach (var app in applications)
        {
            var prefix = app._prefix;
            if (prefix.Length > bestLength && Matches(prefix, path))
            {
                best = app;
                bestLength = prefix.Length;
            }
        }
        return best;
    }

    /// <summary>The part of <paramref name="path"/> under this route's prefix ("/" when nothing is left).</summary>
    public string SubPath(string path)
    {
        var rest = _prefix == "/" ? path : path[_prefix.Length..];
        return rest.Length == 0 ? "/" : rest;
    }

    private static bool Matches(string prefix, string path)
    {
        if (prefix == "/")
            return true;
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        return path.Length == prefix.Length || path[prefix.Length] == '/';
    }
}
