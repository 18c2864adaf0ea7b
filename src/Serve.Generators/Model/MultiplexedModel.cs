namespace Serve.Generators.Model
{
    /// <summary>The <c>[Multiplexed]</c> model loader of a deployment class.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="MethodName">The loader's name, escaped, e.g. <c>LoadModelAsync</c>.</param>
    /// <param name="ModelType">The model type, fully qualified, e.g. <c>global::Demo.Model</c>.</param>
    /// <param name="MaxModelsPerReplica">The attribute's limit.</param>
    /// <param name="TakesCancellationToken">True when the loader takes a trailing <c>CancellationToken</c>.</param>
    /// <param name="ReturnsValueTask">True for <c>ValueTask&lt;TModel&gt;</c>, false for <c>Task&lt;TModel&gt;</c>.</param>
    internal sealed record MultiplexedModel(string MethodName, string ModelType, int MaxModelsPerReplica, bool TakesCancellationToken, bool ReturnsValueTask);
}
