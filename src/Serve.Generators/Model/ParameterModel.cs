namespace Serve.Generators.Model
{
    /// <summary>One parameter of a handle method or a constructor.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Name">The parameter name as declared (unescaped).</param>
    /// <param name="Type">The type for declarations, <c>global::</c>-qualified with nullable annotations (<c>string?</c>).</param>
    /// <param name="TypeOf">The type without nullable reference annotations, for <c>typeof</c> and type arguments that must not be nullable.</param>
    /// <param name="SignatureType">The type as it enters the method id and duplicate checks, e.g. <c>string</c>.</param>
    /// <param name="Kind">How the parameter is passed.</param>
    /// <param name="DefaultValue">The default value as a C# expression, or null.</param>
    /// <param name="NotNull">A reference type declared non-nullable (in a nullable-enabled context): JSON null is refused for it.</param>
    internal sealed record ParameterModel(
        string Name,
        string Type,
        string TypeOf,
        string SignatureType,
        ParameterKind Kind,
        string? DefaultValue,
        bool NotNull = false);
}
