using Serve.Routing;

namespace Serve.Http;

/// <summary>
/// One application's HTTP route as the controller publishes it: its prefix, a handle to its ingress deployment and how
/// strictly its JSON is read. The ingress matches each request's path against the published table.
/// </summary>
internal sealed record IngressRoute(string RoutePrefix, string Application, DeploymentEndpoint Ingress, DeploymentHandle Handle, bool AllowUnknownJsonProperties = false)
{
    /// <summary>The application whose route prefix is the longest match of <paramref name="path"/> on a '/' boundary.</summary>
    public static IngressRoute? Match(IReadOnlyList<IngressRoute> applications, string path)
    {
        IngressRoute? best = null;
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

    /// <summary>The part of <paramref name="path"/> under this route's prefix ("/" when nothing is left).</summary>
    public string SubPath(string path)
    {
        var prefix = Normalize(RoutePrefix);
        var rest = prefix == "/" ? path : path[prefix.Length..];
        return rest.Length == 0 ? "/" : rest;
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
}
