using Serve.Generators.Helpers;

namespace Serve.Generators.Model
{
    /// <summary>One public constructor, which becomes one <c>Bind</c> overload and one factory arm.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Index">Its position among the public constructors, in declaration order.</param>
    /// <param name="Parameters">All its parameters, injected ones included.</param>
    internal sealed record ConstructorModel(int Index, EquatableArray<ParameterModel> Parameters);
}
