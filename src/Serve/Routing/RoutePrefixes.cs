namespace Serve.Routing;

/// <summary>
/// The one rule for HTTP route prefixes, shared by <see cref="DeploymentOptions.Validate"/>, <see cref="RunOptions"/>
/// and the config loader: a prefix is an absolute URL path (<c>/</c>, <c>/greeter</c>, <c>/api/v1</c>) whose segments
/// hold only characters a URL path carries unescaped; <c>/a</c> and <c>/a/</c> are the same prefix.
/// </summary>
internal static class RoutePrefixes
{
    /// <summary>What a prefix may hold, for messages.</summary>
    public const string Allowed = "ASCII letters, digits, '/' and - . _ ~ ! $ & ' ( ) * + , ; = : @";

    /// <summary>Why <paramref name="prefix"/> is not a route prefix (phrased to follow "it"), or null when it is one.</summary>
    public static string? Problem(string prefix)
    {
        if (prefix.Length == 0 || prefix[0] != '/')
            return $"must start with '/', e.g. \"/{prefix.TrimStart('/')}\" (\"/\" serves every path)";
        foreach (var c in prefix)
        {
            if (!IsAllowed(c))
                return $"holds {Show(c)}, which a route prefix may not: use a URL path of {Allowed} (no spaces, '%' escapes, '?', '#', '{{', '}}' or other characters)";
        }
        var trimmed = Normalize(prefix);
        if (trimmed.Length > 1)
        {
            foreach (var segment in trimmed[1..].Split('/'))
            {
                if (segment.Length == 0)
                    return "has an empty segment ('//'); write each '/' once, e.g. \"/api/v1\"";
                if (segment is "." or "..")
                    return $"has a '{segment}' segment, which clients and servers resolve away before routing, so it never matches; write the path without it";
            }
        }
        return null;
    }

    /// <summary>The canonical form of a valid prefix: without trailing slashes, except <c>"/"</c> itself.</summary>
    public static string Normalize(string prefix)
    {
        var trimmed = prefix.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed;
    }

    private static bool IsAllowed(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
            or '/' or '-' or '.' or '_' or '~' or '!' or '$' or '&' or '\'' or '(' or ')' or '*' or '+' or ',' or ';' or '=' or ':' or '@';

    private static string Show(char c) =>
        c is > ' ' and < (char)127 ? $"'{c}'" : c == ' ' ? "a space" : $"the character U+{(int)c:X4}";
}
