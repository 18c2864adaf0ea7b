namespace Serve.Generators.Model
{
    /// <summary>How one handle parameter of an HTTP endpoint is bound.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Source">Where the value comes from.</param>
    /// <param name="Name">The route value, query key or header name (the attribute's <c>Name</c>, else the parameter name).</param>
    internal sealed record HttpBindingModel(HttpBindingSource Source, string Name);
}
