namespace Serve.Generators.Model
{
    /// <summary>Where an HTTP endpoint parameter's value comes from; the names match the runtime's <c>HttpParameterSource</c>.</summary>
    /// <remarks>A plain enum, so models holding it stay cacheable.</remarks>
    internal enum HttpBindingSource
    {
        /// <summary><c>[FromBody]</c>.</summary>
        Body,
        /// <summary><c>[FromQuery]</c>.</summary>
        Query,
        /// <summary><c>[FromRoute]</c>.</summary>
        Route,
        /// <summary><c>[FromHeader]</c>.</summary>
        Header,
        /// <summary>No attribute: a route value of that name if the template has one, else the query string.</summary>
        Auto,
    }
}
