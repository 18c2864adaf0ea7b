using Microsoft.CodeAnalysis;
using Serve.Generators.Helpers;

namespace Serve.Generators.Model
{
    /// <summary>A diagnostic to report: the rule id, where, and the message arguments.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches; <see cref="ToDiagnostic"/> runs only at report time.</remarks>
    internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
    {
        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] arguments)
            => new(descriptor.Id, location, new EquatableArray<string>(arguments));

        public Diagnostic ToDiagnostic()
        {
            var arguments = new object[Arguments.Count];
            for (var i = 0; i < arguments.Length; i++)
                arguments[i] = Arguments[i];
            return Diagnostic.Create(DiagnosticDescriptors.Find(Id), Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None, arguments);
        }
    }
}
