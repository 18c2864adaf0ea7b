using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    public sealed partial class DeploymentGenerator
    {
        // [Batch] methods: the IReadOnlyList<T> -> IReadOnlyList<R> shape becomes a handle method T -> R.
        internal sealed partial class Parser
        {
            private const string BatchSuffix = "Batch";

            private readonly HashSet<string> _batchProperties = new();

            private AttributeData? FindBatch(IMethodSymbol method)
            {
                foreach (var attribute in method.GetAttributes())
                {
                    if (Is(attribute.AttributeClass, _known.BatchAttribute))
                        return attribute;
                }
                return null;
            }

            /// <summary>Reports <c>[Batch]</c> on methods of a deployment class that never become handle methods.</summary>
            private void ReportIgnoredBatches(INamedTypeSymbol type)
            {
                foreach (var member in type.GetMembers())
                {
                    if (member is not IMethodSymbol method || FindBatch(method) is not { } attribute)
                        continue;
                    var why = method.IsStatic ? "static"
                        : method.DeclaredAccessibility != Accessibility.Public ? "not public"
                        : method.MethodKind != MethodKind.Ordinary ? "not an ordinary method"
                        : null;
                    if (why is not null)
                        Report(DiagnosticDescriptors.BatchNotHandleMethod, AttributeLocation(attribute), type.Name + "." + method.Name, why);
                }
            }

            /// <summary>
            /// Turns a <c>[Batch]</c> method's model into its handle form (one item in, one result out); the model as is
            /// when the method has no <c>[Batch]</c>; null, with diagnostics reported, when the method is no valid batch method.
            /// </summary>
            private MethodModel? WithBatch(MethodModel model, IMethodSymbol method, string display, LocationInfo? identifier, bool isFunction)
            {
                var attribute = FindBatch(method);
                if (attribute is null)
                    return model;
                var attributeLocation = AttributeLocation(attribute);
                if (isFunction)
                {
                    Report(DiagnosticDescriptors.BatchNotHandleMethod, attributeLocation, display, "a function deployment, whose replicas share one static method");
                    return null;
                }

                var valid = true;
                var methodSyntax = SyntaxOf(method) as MethodDeclarationSyntax;
                var inputs = method.Parameters.Where(p => !Is(p.Type, _known.CancellationToken)).ToList();
                ITypeSymbol? item = null;
                if (inputs.Count == 1 && Is(inputs[0].Type, _known.IReadOnlyList))
                {
                    item = ((INamedTypeSymbol)inputs[0].Type).TypeArguments[0];
                }
                else
                {
                    var takes = inputs.Count == 0 ? "no input" : "(" + string.Join(", ", inputs.Select(p => Minimal(p.Type) + " " + p.Name)) + ")";
                    var itemGuess = inputs.Count == 1 ? Minimal(inputs[0].Type) : "T";
                    var fix = method.Name + "(IReadOnlyList<" + itemGuess + "> inputs, CancellationToken cancellationToken)";
                    Report(DiagnosticDescriptors.BatchParameters, methodSyntax is null ? identifier : LocationInfo.From(methodSyntax.ParameterList), display, takes, fix);
                    valid = false;
                }

                var (shape, result) = Shape(method);
                var returnLocation = methodSyntax is null ? identifier : LocationInfo.From(methodSyntax.ReturnType);
                ITypeSymbol? resultItem = null;
                if (shape is ResultShape.Value or ResultShape.TaskOfT or ResultShape.ValueTaskOfT or ResultShape.Stream
                    && Is(result, _known.IReadOnlyList))
                {
                    resultItem = ((INamedTypeSymbol)result!).TypeArguments[0];
                }
                else
                {
                    var returned = method.ReturnsVoid ? "void" : Minimal(method.ReturnType);
                    var hint = result is null
                        ? "Return one result per input, e.g. Task<IReadOnlyList<bool>>."
                        : shape == ResultShape.Stream
                            ? "Return IAsyncEnumerable<IReadOnlyList<" + Minimal(result) + ">>, one item per input at every step."
                            : "Return " + (shape == ResultShape.ValueTaskOfT ? "ValueTask" : "Task") + "<IReadOnlyList<" + Minimal(result) + ">>, one result per input, in input order.";
                    Report(DiagnosticDescriptors.BatchResult, returnLocation, display, returned, hint);
                    valid = false;
                }

                var (maxBatchSize, waitMs, maxConcurrent) = ParseBatchOptions(attribute, display, ref valid);

                var property = method.Name + BatchSuffix;
                if (method.ContainingType.GetMembers(property).Length > 0 || !_batchProperties.Add(property))
                {
                    Report(DiagnosticDescriptors.BatchPropertyClash, identifier, display, property);
                    valid = false;
                }
                if (!valid)
                    return null;

                var parameters = model.Parameters.Select(p => p.Kind == ParameterKind.CancellationToken ? p : p with
                {
                    Type = item!.ToDisplayString(s_typeFormat),
                    TypeOf = item.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat),
                    SignatureType = item.ToDisplayString(s_signatureFormat),
                    DefaultValue = null,
                    NotNull = item.IsReferenceType && item.NullableAnnotation == NullableAnnotation.NotAnnotated,
                }).ToArray();
                return model with
                {
                    Parameters = new EquatableArray<ParameterModel>(parameters),
                    ResultType = resultItem!.ToDisplayString(s_typeFormat),
                    ResultTypeOf = resultItem.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat),
                    Batch = new BatchModel(
                        FieldName: "__serveBatch_" + method.Name + "_" + model.Index,
                        PropertyName: property,
                        MaxBatchSize: maxBatchSize,
                        BatchWaitTimeoutMs: waitMs,
                        MaxConcurrentBatches: maxConcurrent),
                };
            }

            private (int MaxBatchSize, int WaitMs, int MaxConcurrent) ParseBatchOptions(AttributeData attribute, string display, ref bool valid)
            {
                int maxBatchSize = 10, waitMs = 10, maxConcurrent = 1;
                var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(_cancellationToken) as AttributeSyntax;
                foreach (var argument in attribute.NamedArguments)
                {
                    if (argument.Value.Kind == TypedConstantKind.Error || argument.Value.Value is not int n)
                        continue;
                    string? fix = null;
                    switch (argument.Key)
                    {
                        case "MaxBatchSize":
                            if (n < 1)
                                fix = "use 1 or more calls per batch (the default is 10)";
                            else
                                maxBatchSize = n;
                            break;
                        case "BatchWaitTimeoutMs":
                            if (n < 0)
                                fix = "use 0 (do not wait for more calls) or more milliseconds (the default is 10)";
                            else
                                waitMs = n;
                            break;
                        case "MaxConcurrentBatches":
                            if (n < 1)
                                fix = "use 1 or more batches at once per replica (the default is 1)";
                            else
                                maxConcurrent = n;
                            break;
                    }
                    if (fix is not null)
                    {
                        Report(DiagnosticDescriptors.BatchOptionOutOfRange, ArgumentLocation(syntax, argument.Key), display, argument.Key, Show(n), fix);
                        valid = false;
                    }
                }
                return (maxBatchSize, waitMs, maxConcurrent);
            }

            private LocationInfo? AttributeLocation(AttributeData attribute) =>
                LocationInfo.From(attribute.ApplicationSyntaxReference?.GetSyntax(_cancellationToken));
        }
    }
}
