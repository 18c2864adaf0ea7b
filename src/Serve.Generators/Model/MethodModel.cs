using System.Linq;
using Serve.Generators.Helpers;

namespace Serve.Generators.Model
{
    /// <summary>One handle method: the user method it calls and how.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Name">The user method's name, e.g. <c>Shout</c> (the function's name for a function deployment).</param>
    /// <param name="HandleName">The handle method's name, e.g. <c>ShoutAsync</c>.</param>
    /// <param name="MethodId">The stable id: FNV-1a of <c>Name(ParamTypes)</c>.</param>
    /// <param name="IsCall">True for the call method (<c>Call</c>/<c>CallAsync</c>, or a function).</param>
    /// <param name="Shape">What the user method returns.</param>
    /// <param name="ResultType">The value or item type with nullable annotations; null for void shapes.</param>
    /// <param name="ResultTypeOf">The same type for <c>typeof</c>; null for void shapes.</param>
    /// <param name="Parameters">All parameters of the user method, cancellation tokens included.</param>
    /// <param name="Index">The method's position among the handle methods (the struct is <c>{Name}_{Index}</c>).</param>
    /// <param name="Http">The route of an ASP.NET Core <c>[HttpGet]</c>-style attribute, or null.</param>
    /// <param name="Batch">Set for a <c>[Batch]</c> method: then <paramref name="Parameters"/> hold the item parameter (one <c>T</c>
    /// instead of the user's <c>IReadOnlyList&lt;T&gt;</c>) and <paramref name="ResultType"/> is one call's result.</param>
    internal sealed record MethodModel(
        string Name,
        string HandleName,
        int MethodId,
        bool IsCall,
        ResultShape Shape,
        string? ResultType,
        string? ResultTypeOf,
        EquatableArray<ParameterModel> Parameters,
        int Index,
        HttpEndpointModel? Http = null,
        BatchModel? Batch = null)
    {
        public string StructName => Name + "_" + Index;

        /// <summary>True when a graph builder can call the method: it returns a value and takes at least one input.</summary>
        public bool HasGraphShape =>
            Shape is ResultShape.Value or ResultShape.TaskOfT or ResultShape.ValueTaskOfT
            && Parameters.Any(p => p.Kind != ParameterKind.CancellationToken);

        /// <summary>Names that <c>Application&lt;T&gt;</c> already uses for a property or an always-applicable method (SERVE041).</summary>
        public bool IsHiddenGraphBuilder =>
            Name is "Definition" or "DeploymentName" or "ConstructorIndex" or "Arguments" or "Equals" or "ReferenceEquals";
    }
}
