namespace Serve.Generators.Model
{
    /// <summary>A type that contains a nested deployment class, re-declared as <c>partial {Keyword} {Name}</c> around it.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Keyword"><c>class</c>, <c>struct</c>, <c>record</c>, <c>record struct</c> or <c>interface</c>.</param>
    /// <param name="Name">The type's name (escaped if it is a keyword).</param>
    internal sealed record ContainingTypeModel(string Keyword, string Name);
}
