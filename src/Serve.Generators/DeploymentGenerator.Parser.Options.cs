using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Serve.Generators.Model;

namespace Serve.Generators
{
    public sealed partial class DeploymentGenerator
    {
        // The attribute's options (validated against OptionRules, the table the runtime and the config loader check
        // too, linked into this assembly) and parameter default values.
        internal sealed partial class Parser
        {
            // A default survives only when every later parameter that stays in the signature has one too ('params'
            // is dropped, so a default before a former params array would no longer compile).
            private static ParameterModel[] WithTrailingDefaults(List<ParameterModel> parameters, bool bindOnly)
            {
                var result = parameters.ToArray();
                var allLaterHaveDefaults = true;
                for (var i = result.Length - 1; i >= 0; i--)
                {
                    var p = result[i];
                    var inSignature = bindOnly
                        ? p.Kind is not (ParameterKind.Context or ParameterKind.Service or ParameterKind.OptionalService)
                        : p.Kind != ParameterKind.CancellationToken;
                    if (!inSignature)
                        continue;
                    if (p.DefaultValue is null)
                        allLaterHaveDefaults = false;
                    else if (!allLaterHaveDefaults)
                        result[i] = p with { DefaultValue = null };
                }
                return result;
            }

            private static string? DefaultValue(IParameterSymbol p)
            {
                if (!p.HasExplicitDefaultValue)
                    return null;
                var value = p.ExplicitDefaultValue;
                var type = p.Type;
                if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
                    type = nullable.TypeArguments[0];
                if (value is null)
                    return type.IsReferenceType || p.Type.OriginalDefinition.SpecialType == SpecialType.System_Nullable_T ? "null" : "default";
                if (type.TypeKind == TypeKind.Enum)
                {
                    var number = Literal(value);
                    return "(" + type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat) + ")" + (number.StartsWith("-", StringComparison.Ordinal) ? "(" + number + ")" : number);
                }
                return Literal(value);
            }

            private static string Literal(object value) => value switch
            {
                string s => SymbolDisplay.FormatLiteral(s, quote: true),
                char c => SymbolDisplay.FormatLiteral(c, quote: true),
                bool b => b ? "true" : "false",
                float f when float.IsNaN(f) => "float.NaN",
                float f when float.IsPositiveInfinity(f) => "float.PositiveInfinity",
                float f when float.IsNegativeInfinity(f) => "float.NegativeInfinity",
                float f => f.ToString("R", CultureInfo.InvariantCulture) + "F",
                double d when double.IsNaN(d) => "double.NaN",
                double d when double.IsPositiveInfinity(d) => "double.PositiveInfinity",
                double d when double.IsNegativeInfinity(d) => "double.NegativeInfinity",
                double d => d.ToString("R", CultureInfo.InvariantCulture) + "D",
                decimal m => m.ToString(CultureInfo.InvariantCulture) + "M",
                long l => l.ToString(CultureInfo.InvariantCulture) + "L",
                ulong ul => ul.ToString(CultureInfo.InvariantCulture) + "UL",
                uint ui => ui.ToString(CultureInfo.InvariantCulture) + "U",
                IFormattable n => n.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? "default",
            };

            private static string? ReadName(AttributeData? attribute)
            {
                if (attribute is null)
                    return null;
                foreach (var argument in attribute.NamedArguments)
                {
                    if (argument.Key == "Name" && argument.Value.Kind != TypedConstantKind.Error && argument.Value.Value is string name && !string.IsNullOrWhiteSpace(name))
                        return name;
                }
                return null;
            }

            private OptionsModel ParseOptions(AttributeData? attribute, string deploymentName)
            {
                var options = new OptionsModel();
                if (attribute is null)
                    return options;
                var attributeSyntax = attribute.ApplicationSyntaxReference?.GetSyntax(_cancellationToken) as AttributeSyntax;
                foreach (var argument in attribute.NamedArguments)
                {
                    var value = argument.Value;
                    if (value.Kind == TypedConstantKind.Error)
                        continue;
                    var name = argument.Key;
                    var where = ArgumentLocation(attributeSyntax, name);
                    switch (name, value.Value)
                    {
                        case ("Name", var v):
                            if (v is string s && string.IsNullOrWhiteSpace(s))
                                OutOfRange(where, deploymentName, name, Show(v), "use a non-empty name, or leave Name unset to use the class or function name");
                            break;
                        case ("NumReplicas", int n):
                            if (!OptionRules.NumReplicas.Accepts(n))
                                OutOfRange(where, deploymentName, name, Show(n), OptionRules.NumReplicas.Fix);
                            else
                                options = options with { NumReplicas = n };
                            break;
                        case ("MaxOngoingRequests", int n):
                            if (!OptionRules.MaxOngoingRequests.Accepts(n))
                                OutOfRange(where, deploymentName, name, Show(n), OptionRules.MaxOngoingRequests.Fix);
                            else
                                options = options with { MaxOngoingRequests = n };
                            break;
                        case ("MaxQueuedRequests", int n):
                            if (!OptionRules.MaxQueuedRequests.Accepts(n))
                                OutOfRange(where, deploymentName, name, Show(n), OptionRules.MaxQueuedRequests.Fix);
                            else
                                options = options with { MaxQueuedRequests = n };
                            break;
                        case ("RoutePrefix", var v):
                            if (v is not string prefix)
                                break;
                            if (prefix.Length == 0 || prefix[0] != '/')
                                OutOfRange(where, deploymentName, name, Show(prefix), "start it with '/', e.g. \"/" + Slug(deploymentName) + "\"");
                            else
                                options = options with { RoutePrefix = prefix };
                            break;
                        case ("AllowUnknownJsonProperties", bool b):
                            options = options with { AllowUnknownJsonProperties = b };
                            break;
                        case ("RetryOnNodeFailure", bool retry):
                            options = options with { RetryOnNodeFailure = retry };
                            break;
                        case ("MaxReplicasPerNode", int cap):
                            if (!OptionRules.MaxReplicasPerNode.Accepts(cap))
                                OutOfRange(where, deploymentName, name, Show(cap), OptionRules.MaxReplicasPerNode.Fix);
                            else if (cap > 0)
                                options = options with { MaxReplicasPerNode = cap };
                            break;
                        case ("NodeSelector", var v):
                            if (v is not string selector)
                                break;
                            if (!OptionRules.TryParseNodeSelector(selector, out var labels, out var problem))
                                OutOfRange(where, deploymentName, name, Show(selector), problem);
                            else if (labels.Count > 0)
                                options = options with { NodeSelector = string.Join(",", labels.Select(l => l.Key + "=" + l.Value)) };
                            break;
                        case ("Version", var v):
                            if (v is string version)
                                options = options with { Version = version };
                            break;
                        case ("NumCpus", double d):
                            if (!OptionRules.NumCpus.Accepts(d))
                                OutOfRange(where, deploymentName, name, Show(d), OptionRules.NumCpus.Fix);
                            else
                                options = options with { NumCpus = d };
                            break;
                        case ("NumGpus", double d):
                            if (!OptionRules.NumGpus.Accepts(d))
                                OutOfRange(where, deploymentName, name, Show(d), OptionRules.NumGpus.Fix);
                            else if (!OptionRules.IsWholeEnough(d))
                                OutOfRange(where, deploymentName, name, Show(d), OptionRules.WholeGpusFix(Show(Math.Ceiling(d))));
                            else
                                options = options with { NumGpus = d };
                            break;
                        case ("GracefulShutdownTimeoutSeconds", double d):
                            if (!OptionRules.GracefulShutdownTimeout.Accepts(d))
                                OutOfRange(where, deploymentName, name, Show(d), OptionRules.GracefulShutdownTimeout.Fix);
                            else
                                options = options with { GracefulShutdownTimeoutSeconds = d };
                            break;
                        case ("HealthCheckPeriodSeconds", double d):
                            if (!OptionRules.HealthCheckPeriod.Accepts(d))
                                OutOfRange(where, deploymentName, name, Show(d), OptionRules.HealthCheckPeriod.Fix);
                            else
                                options = options with { HealthCheckPeriodSeconds = d };
                            break;
                        case ("HealthCheckTimeoutSeconds", double d):
                            if (!OptionRules.HealthCheckTimeout.Accepts(d))
                                OutOfRange(where, deploymentName, name, Show(d), OptionRules.HealthCheckTimeout.Fix);
                            else
                                options = options with { HealthCheckTimeoutSeconds = d };
                            break;
                    }
                }
                return options;
            }

            private void OutOfRange(LocationInfo? where, string deploymentName, string option, string value, string fix)
                => Report(DiagnosticDescriptors.OptionOutOfRange, where, deploymentName, option, value, fix);

            private static string Slug(string name) => name.ToLowerInvariant();

            private static string Show(object? value) => value switch
            {
                null => "null",
                string s => "\"" + s + "\"",
                double d => d.ToString("R", CultureInfo.InvariantCulture),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? "",
            };

            private LocationInfo? ArgumentLocation(AttributeSyntax? attribute, string name)
            {
                if (attribute?.ArgumentList is { } list)
                {
                    foreach (var argument in list.Arguments)
                    {
                        if (argument.NameEquals?.Name.Identifier.ValueText == name)
                            return LocationInfo.From(argument);
                    }
                }
                return LocationInfo.From(attribute);
            }
        }
    }
}
