using Serve.Generators.Helpers;

namespace Serve.Generators.Model
{
    /// <summary>Everything the emitter needs to write one deployment's file.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="Key">Unique per deployment: the metadata name (<c>Demo.Outer+Greeter</c>), or for a function its containing type's metadata name, '.', name and parameter types.</param>
    /// <param name="HintName">The metadata name with '+' as '.', e.g. <c>Demo.Greeter</c>; the file is <c>{HintName}.Serve.g.cs</c>.</param>
    /// <param name="Namespace">The namespace, escaped (<c>Demo</c>); empty for the global namespace.</param>
    /// <param name="ContainingTypes">Types containing the class, outermost first (for a function: none).</param>
    /// <param name="TypeName">The class name (for a function, its static class's name), escaped.</param>
    /// <param name="TypeKeyword"><c>class</c> or <c>record</c>: how the generated part of the class is declared.</param>
    /// <param name="ImplementationType">The class (or static class), fully qualified: <c>global::Demo.Greeter</c>.</param>
    /// <param name="DeploymentName">The default deployment name: the attribute's <c>Name</c>, else the class or function name.</param>
    /// <param name="HandleName">The handle's simple name, <c>GreeterHandle</c>.</param>
    /// <param name="IsPublic">True when the deployment is effectively public, so the handle is public too.</param>
    /// <param name="FunctionName">The method name of a function deployment; null for a class.</param>
    /// <param name="Constructors">The public constructors (none for a function).</param>
    /// <param name="Methods">The handle methods, in declaration order.</param>
    /// <param name="Options">The attribute's options.</param>
    /// <param name="UserConfigType">The <c>TConfig</c> of <c>IReconfigurable&lt;TConfig&gt;</c> as declared, or null.</param>
    /// <param name="UserConfigTypeOf">The same type for <c>typeof</c>, or null.</param>
    /// <param name="Multiplexed">The <c>[Multiplexed]</c> model loader, or null.</param>
    /// <param name="IsDuplicateHandle">Set when another deployment with an ordinally smaller key generates the same handle type; nothing is emitted.</param>
    internal sealed record DeploymentModel(
        string Key,
        string HintName,
        string Namespace,
        EquatableArray<ContainingTypeModel> ContainingTypes,
        string TypeName,
        string TypeKeyword,
        string ImplementationType,
        string DeploymentName,
        string HandleName,
        bool IsPublic,
        string? FunctionName,
        EquatableArray<ConstructorModel> Constructors,
        EquatableArray<MethodModel> Methods,
        OptionsModel Options,
        string? UserConfigType,
        string? UserConfigTypeOf,
        bool IsDuplicateHandle = false,
        MultiplexedModel? Multiplexed = null)
    {
        public bool IsFunction => FunctionName is not null;

        public string HandleFullName => Qualify(HandleName);

        /// <summary>The type that holds <c>Bind</c> and <c>__ServeDefinition</c>: the class, or <c>{Function}Deployment</c>.</summary>
        public string DefinitionHolder => IsFunction ? Qualify(FunctionName + "Deployment") : ImplementationType;

        public HandleNameModel ToHandleName() => new(HandleName, Namespace, HandleFullName, Key);

        public ManifestEntry ToManifestEntry() => new(Key, DefinitionHolder + ".__ServeDefinition");

        private string Qualify(string name) => Namespace.Length == 0 ? "global::" + name : "global::" + Namespace + "." + name;
    }
}
