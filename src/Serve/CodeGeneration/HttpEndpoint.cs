namespace Serve.CodeGeneration;

/// <summary>Where an HTTP endpoint parameter's value comes from.</summary>
public enum HttpParameterSource
{
    /// <summary>The JSON request body (<c>[FromBody]</c>).</summary>
    Body,
    /// <summary>The query string (<c>[FromQuery]</c>).</summary>
    Query,
    /// <summary>A route template value (<c>[FromRoute]</c>).</summary>
    Route,
    /// <summary>A request header (<c>[FromHeader]</c>).</summary>
    Header,
    /// <summary>No attribute: a route value of that name if the template has one, else the query string.</summary>
    Auto,
}

/// <summary>
/// How one parameter of an HTTP endpoint is bound. Generated code sets it with named properties (never a positional
/// constructor), so a newer Serve can add properties without breaking assemblies compiled against an older one.
/// </summary>
public sealed record HttpParameterBinding
{
    /// <summary>Where the value comes from.</summary>
    public required HttpParameterSource Source { get; init; }

    /// <summary>The route value, query key or header name (the attribute's <c>Name</c>, else the parameter name).</summary>
    public required string Name { get; init; }

    /// <summary>True when the parameter is optional.</summary>
    public bool HasDefault { get; init; }

    /// <summary>The optional parameter's default, used when the request does not carry the value.</summary>
    public object? DefaultValue { get; init; }
}

/// <summary>
/// An HTTP endpoint of the ingress deployment: a method carrying ASP.NET Core's <c>[HttpGet]</c>, <c>[HttpPost]</c>,
/// <c>[HttpPut]</c> or <c>[HttpDelete]</c>. Emitted by the generator with named properties (never a positional
/// constructor), so a newer Serve can add properties without breaking older generated code; not for user code.
/// </summary>
public sealed record HttpEndpoint
{
    /// <summary>The handle method's stable id.</summary>
    public required int MethodId { get; init; }

    /// <summary>The HTTP verb, e.g. <c>GET</c>.</summary>
    public required string Method { get; init; }

    /// <summary>The route template under the application's prefix, e.g. <c>items/{id}</c>.</summary>
    public required string Template { get; init; }

    /// <summary>One per handle parameter (cancellation token excluded), in order.</summary>
    public required HttpParameterBinding[] Parameters { get; init; }
}
