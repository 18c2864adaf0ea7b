namespace Serve.Generators.Model
{
    /// <summary>One line of the manifest: the definition field to register, sorted by the deployment's metadata name.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="SortKey">The deployment's unique key (metadata name).</param>
    /// <param name="DefinitionField">e.g. <c>global::Demo.Greeter.__ServeDefinition</c>.</param>
    internal sealed record ManifestEntry(string SortKey, string DefinitionField);
}
