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

/// <summary>How one parameter of an HTTP endpoint is bound.</summary>
/// <param name="Source">Where the value comes from.</param>
/// <param name="Name">The route value, query key or header name (the attribute's <c>Name</c>, else the parameter name).</param>
/// <param name="HasDefault">True when the parameter is optional.</param>
/// <param name="DefaultValue">The optional parameter's default, used when the request does not carry the value.</param>
public sealed record HttpParameterBinding(HttpParameterSource Source, string Name, bool HasDefault = false, object? DefaultValue = null);

/// <summary>
/// An HTTP endpoint of the ingress deployment: a method carrying ASP.NET Core's <c>[HttpGet]</c>, <c>[HttpPost]</c>,
/// <c>[HttpPut]</c> or <c>[HttpDelete]</c>. Emitted by the generator; not for user code.
/// </summary>
/// <param name="MethodId">The handle method's stable id.</param>
/// <param name="Method">The HTTP verb, e.g. <c>GET</c>.</param>
/// <param name="Template">The route template under the application's prefix, e.g. <c>items/{id}</c>.</param>
/// <param name="Parameters">One per handle parameter (cancellation token excluded), in order.</param>
public sealed record HttpEndpoint(int MethodId, string Method, string Template, HttpParameterBinding[] Parameters);
