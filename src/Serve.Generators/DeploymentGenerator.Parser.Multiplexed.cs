using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Serve.Generators.Model;

namespace Serve.Generators
{
    public sealed partial class DeploymentGenerator
    {
        // [Multiplexed] model loaders (model multiplexing).
        internal sealed partial class Parser
        {
            private const int DefaultMaxModelsPerReplica = 3;

            private bool IsMultiplexed(IMethodSymbol method) =>
                method.GetAttributes().Any(a => Is(a.AttributeClass, _known.MultiplexedAttribute));

            /// <summary>Finds the one [Multiplexed] loader of a class and checks its shape; reports every misuse.</summary>
            private MultiplexedModel? ParseMultiplexed(INamedTypeSymbol type, string className, ref bool canEmit)
            {
                MultiplexedModel? found = null;
                string? firstName = null;
                foreach (var member in type.GetMembers())
                {
                    if (member is not IMethodSymbol method || !IsMultiplexed(method))
                        continue;
                    var attribute = method.GetAttributes().First(a => Is(a.AttributeClass, _known.MultiplexedAttribute));
                    var syntax = SyntaxOf(method) as MethodDeclarationSyntax;
                    var where = syntax is null ? null : LocationInfo.From(syntax.Identifier);
                    var display = className + "." + method.Name;
                    if (firstName is not null)
                    {
                        Report(DiagnosticDescriptors.MultiplexedTwice, where, className, firstName, method.Name);
                        canEmit = false;
                        continue;
                    }
                    firstName = method.Name;

                    var max = DefaultMaxModelsPerReplica;
                    foreach (var named in attribute.NamedArguments)
                    {
                        if (named.Key == "MaxModelsPerReplica" && named.Value.Value is int m)
                            max = m;
                    }
                    if (max < 1)
                    {
                        Report(DiagnosticDescriptors.MultiplexedLimit, where, display, max.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        canEmit = false;
                        continue;
                    }

                    var parameters = method.Parameters;
                    var takesToken = parameters.Length == 2 && Is(parameters[1].Type, _known.CancellationToken);
                    var shapeOk = !method.IsStatic && !method.IsGenericMethod
                                  && (parameters.Length == 1 || takesToken)
                                  && parameters[0].Type.SpecialType == SpecialType.System_String
                                  && parameters.All(p => p.RefKind == RefKind.None);
                    ITypeSymbol? modelType = null;
                    var returnsValueTask = false;
                    if (method.ReturnType is INamedTypeSymbol { IsGenericType: true, TypeArguments.Length: 1 } returns)
                    {
                        var definition = returns.ConstructedFrom;
                        if (Is(definition, _known.TaskOfT))
                            modelType = returns.TypeArguments[0];
                        else if (Is(definition, _known.ValueTaskOfT))
                        {
                            modelType = returns.TypeArguments[0];
                            returnsValueTask = true;
                        }
                    }
                    if (!shapeOk || modelType is null)
                    {
                        Report(DiagnosticDescriptors.MultiplexedShape, where, display);
                        canEmit = false;
                        continue;
                    }
                    found = new MultiplexedModel(Escape(method.Name), modelType.ToDisplayString(s_typeOfFormat), max, takesToken, returnsValueTask);
                }
                return found;
            }
        }
    }
}
