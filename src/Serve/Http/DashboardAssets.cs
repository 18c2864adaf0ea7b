using Microsoft.AspNetCore.Http;

namespace Serve.Http;

/// <summary>
/// The dashboard's three files (Http/Dashboard/: index.html, dashboard.js, dashboard.css), embedded in the Serve
/// assembly so the page works offline: no CDN, no other origin. The page reads <c>GET /api/serve/applications</c>.
/// </summary>
internal static class DashboardAssets
{
    internal sealed record Asset(string ResourceName, string ContentType)
    {
        private byte[]? _bytes;

        public byte[] Bytes => _bytes ??= Load(ResourceName);
    }

    // Only this origin's script, styles and API: the page builds its DOM with textContent, never HTML from data.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly Asset s_page = new("Serve.Dashboard.index.html", "text/html; charset=utf-8");
    private static readonly Asset s_script = new("Serve.Dashboard.dashboard.js", "text/javascript; charset=utf-8");
    private static readonly Asset s_styles = new("Serve.Dashboard.dashboard.css", "text/css; charset=utf-8");

    /// <summary>The asset served at <paramref name="path"/>, or <c>null</c>.</summary>
    public static Asset? Find(string? path) => path switch
    {
        null or "" or "/" or "/index.html" => s_page,
        "/dashboard.js" => s_script,
        "/dashboard.css" => s_styles,
        _ => null,
    };

    public static Task WriteAsync(HttpContext context, Asset asset)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = asset.ContentType;
        response.Headers.CacheControl = "no-cache";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers["Referrer-Policy"] = "no-referrer";
        return response.Body.WriteAsync(asset.Bytes, context.RequestAborted).AsTask();
    }

    private static byte[] Load(string name)
    {
        using var stream = typeof(DashboardAssets).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The Serve assembly lacks its embedded dashboard file '{name}'; rebuild Serve.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
