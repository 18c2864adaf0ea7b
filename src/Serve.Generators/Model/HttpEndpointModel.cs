using Serve.Generators.Helpers;

namespace Serve.Generators.Model
{
    /// <summary>The ASP.NET Core <c>[HttpGet]</c>-style route of a handle method.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Verb">The HTTP verb, e.g. <c>GET</c>.</param>
    /// <param name="Template">The attribute's route template (empty when none).</param>
    /// <param name="Parameters">One per handle parameter (cancellation tokens excluded), in order.</param>
    internal sealed record HttpEndpointModel(string Verb, string Template, EquatableArray<HttpBindingModel> Parameters);
}
