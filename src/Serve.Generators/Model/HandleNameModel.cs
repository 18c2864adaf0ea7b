namespace Serve.Generators.Model
{
    /// <summary>
    /// A handle type generated in this compilation. While generating, user code that names it sees an error type
    /// called <c>YHandle</c>; constructor parameters are resolved against the set of these.
    /// </summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="SimpleName">e.g. <c>ModelAHandle</c>.</param>
    /// <param name="Namespace">e.g. <c>Demo</c>; empty for the global namespace.</param>
    /// <param name="FullName">e.g. <c>global::Demo.ModelAHandle</c>.</param>
    /// <param name="Key">The unique key of the deployment that generates it.</param>
    internal sealed record HandleNameModel(string SimpleName, string Namespace, string FullName, string Key);
}
