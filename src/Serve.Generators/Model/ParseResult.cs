using Serve.Generators.Helpers;

namespace Serve.Generators.Model
{
    /// <summary>
    /// What the parser makes of one <c>[Deployment]</c> target: the model to emit (null when the declaration has an
    /// error that leaves nothing to generate), its diagnostics, and its handle declaration (for the duplicate check).
    /// </summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    internal sealed record ParseResult(
        DeploymentModel? Model,
        EquatableArray<DiagnosticInfo> Diagnostics,
        HandleDeclaration? Handle);
}
