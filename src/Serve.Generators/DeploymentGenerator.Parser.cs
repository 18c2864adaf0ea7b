using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    public sealed partial class DeploymentGenerator
    {
        /// <summary>
        /// Turns a <c>[Deployment]</c> class or function into a <see cref="ParseResult"/>. Symbols and syntax never
        /// leave this class: everything it returns is strings, numbers, enums and equatable arrays.
        /// </summary>
        internal sealed partial class Parser
        {
            private const string HandleSuffix = "Handle";

            // global::-qualified, with nullable annotations: for declarations.
            private static readonly SymbolDisplayFormat s_typeFormat = SymbolDisplayFormat.FullyQualifiedFormat
                .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

            // No nullable reference annotations and no tuple element names: valid inside typeof(...).
            private static readonly SymbolDisplayFormat s_typeOfFormat = SymbolDisplayFormat.FullyQualifiedFormat
                .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.ExpandValueTuple);

            // What enters the method id: stable under nullable annotations and tuple element names.
            private static readonly SymbolDisplayFormat s_signatureFormat = SymbolDisplayFormat.FullyQualifiedFormat
                .WithGlobalNamespaceStyle(SymbolDisplayGlobalNamespaceStyle.Omitted)
                .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.ExpandValueTuple);

            private readonly List<DiagnosticInfo> _diagnostics = new();
            private readonly KnownTypeSymbols _known;
            private readonly CancellationToken _cancellationToken;

            private Parser(KnownTypeSymbols known, CancellationToken cancellationToken)
            {
                _known = known;
                _cancellationToken = cancellationToken;
            }

            public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
            {
                var parser = new Parser(KnownTypeSymbols.For(context.SemanticModel.Compilation), cancellationToken);
                try
                {
                    var attribute = context.Attributes.Length > 0 ? context.Attributes[0] : null;
                    if (!parser.IsFirstDeploymentDeclaration(context.TargetSymbol, context.TargetNode))
                        return new ParseResult(null, EquatableArray<DiagnosticInfo>.Empty, null);
                    return context.TargetSymbol switch
                    {
                        INamedTypeSymbol { TypeKind: TypeKind.Class } type when context.TargetNode is TypeDeclarationSyntax syntax
                            => parser.ParseClass(type, syntax, attribute),
                        IMethodSymbol method when context.TargetNode is MethodDeclarationSyntax syntax
                            => parser.ParseFunction(method, syntax, attribute),
                        _ => new ParseResult(null, EquatableArray<DiagnosticInfo>.Empty, null),
                    };
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    var location = context.TargetNode switch
                    {
                        BaseTypeDeclarationSyntax t => LocationInfo.From(t.Identifier),
                        MethodDeclarationSyntax m => LocationInfo.From(m.Identifier),
                        _ => LocationInfo.From(context.TargetNode),
                    };
                    var diagnostic = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, location, context.TargetSymbol.Name, e.GetType().Name + ": " + e.Message);
                    return new ParseResult(null, new EquatableArray<DiagnosticInfo>(new[] { diagnostic }), null);
                }
            }

            // [Deployment] repeated on two parts of a partial class is already CS0579; parse the symbol once, at the
            // part that holds its first [Deployment], so no two results share a hint name.
            private bool IsFirstDeploymentDeclaration(ISymbol target, SyntaxNode node)
            {
                foreach (var attribute in target.GetAttributes())
                {
                    if (Is(attribute.AttributeClass, _known.DeploymentAttribute) && attribute.ApplicationSyntaxReference is { } first)
                        return first.SyntaxTree == node.SyntaxTree && node.Span.Contains(first.Span);
                }
                return true;
            }

            private ParseResult ParseClass(INamedTypeSymbol type, TypeDeclarationSyntax syntax, AttributeData? attribute)
            {
                var identifier = LocationInfo.From(syntax.Identifier);
                var className = type.Name;
                var canEmit = true;

                if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
                {
                    Report(DiagnosticDescriptors.ClassNotPartial, identifier, className);
                    canEmit = false;
                }
                if (type.TypeParameters.Length > 0)
                {
                    Report(DiagnosticDescriptors.ClassGeneric, identifier, className);
                    canEmit = false;
                }
                if (type.IsStatic)
                {
                    Report(DiagnosticDescriptors.ClassStatic, identifier, className);
                    canEmit = false;
                }
                else if (type.IsAbstract)
                {
                    Report(DiagnosticDescriptors.ClassAbstract, identifier, className);
                    canEmit = false;
                }

                var containingTypes = new List<ContainingTypeModel>();
                for (var parent = syntax.Parent as TypeDeclarationSyntax; parent is not null; parent = parent.Parent as TypeDeclarationSyntax)
                {
                    var parentName = parent.Identifier.ValueText;
                    if (!parent.Modifiers.Any(SyntaxKind.PartialKeyword))
                    {
                        Report(DiagnosticDescriptors.ContainingTypeNotPartial, LocationInfo.From(parent.Identifier), parentName, className);
                        canEmit = false;
                    }
                    if (parent.TypeParameterList is not null)
                    {
                        Report(DiagnosticDescriptors.ContainingTypeGeneric, LocationInfo.From(parent.Identifier), parentName, className);
                        canEmit = false;
                    }
                    containingTypes.Insert(0, new ContainingTypeModel(Keyword(parent), Escape(parentName)));
                }

                var access = EffectiveAccess(type, out var accessProblem);
                if (access == Access.Inaccessible)
                {
                    Report(DiagnosticDescriptors.DeploymentInaccessible, identifier, className, accessProblem!);
                    canEmit = false;
                }

                var implementationType = type.ToDisplayString(s_typeOfFormat);
                var deploymentName = ReadName(attribute) ?? className;
                var options = ParseOptions(attribute, deploymentName);
                // A static or abstract class is already reported; its constructors would only add noise.
                var constructors = type.IsStatic || type.IsAbstract
                    ? EquatableArray<ConstructorModel>.Empty
                    : ParseConstructors(type, syntax, identifier, className, ref canEmit);
                var (configType, configTypeOf, reconfigure) = FindReconfigurable(type);
                var methods = ParseMethods(type, className, implementationType, reconfigure);
                var multiplexed = type.IsStatic ? null : ParseMultiplexed(type, className, ref canEmit);
                ReportIgnoredBatches(type);

                var metadataName = MetadataName(type);
                var ns = Namespace(type.ContainingNamespace);
                var model = new DeploymentModel(
                    Key: metadataName,
                    HintName: metadataName.Replace('+', '.'),
                    Namespace: ns,
                    ContainingTypes: new EquatableArray<ContainingTypeModel>(containingTypes.ToArray()),
                    TypeName: Escape(className),
                    TypeKeyword: syntax is RecordDeclarationSyntax ? "record" : "class",
                    ImplementationType: implementationType,
                    DeploymentName: deploymentName,
                    HandleName: className + HandleSuffix,
                    IsPublic: access == Access.Public,
                    FunctionName: null,
                    Constructors: constructors,
                    Methods: methods,
                    Options: options,
                    UserConfigType: configType,
                    UserConfigTypeOf: configTypeOf,
                    Multiplexed: multiplexed);
                return Result(canEmit ? model : null, identifier, metadataName.Replace('+', '.'));
            }

            private ParseResult ParseFunction(IMethodSymbol method, MethodDeclarationSyntax syntax, AttributeData? attribute)
            {
                var identifier = LocationInfo.From(syntax.Identifier);
                var name = method.Name;
                var container = method.ContainingType;
                var canEmit = true;

                var containerSyntax = syntax.Parent as TypeDeclarationSyntax;
                var isStaticPartialClass = container.TypeKind == TypeKind.Class && container.IsStatic
                    && containerSyntax is not null && containerSyntax.Modifiers.Any(SyntaxKind.PartialKeyword);
                if (!isStaticPartialClass)
                {
                    Report(DiagnosticDescriptors.FunctionNotInStaticPartialClass,
                        containerSyntax is null ? identifier : LocationInfo.From(containerSyntax.Identifier), name, container.Name);
                    canEmit = false;
                }
                if (!method.IsStatic)
                {
                    Report(DiagnosticDescriptors.FunctionNotStatic, identifier, name);
                    canEmit = false;
                }
                if (method.IsGenericMethod)
                {
                    Report(DiagnosticDescriptors.GenericMethod, identifier, container.Name + "." + name);
                    canEmit = false;
                }
                for (var parent = containerSyntax; parent is not null; parent = parent.Parent as TypeDeclarationSyntax)
                {
                    if (parent.TypeParameterList is not null)
                    {
                        Report(DiagnosticDescriptors.ContainingTypeGeneric, LocationInfo.From(parent.Identifier), parent.Identifier.ValueText, name);
                        canEmit = false;
                    }
                }

                var access = EffectiveAccess(method, out var accessProblem);
                if (access == Access.Inaccessible)
                {
                    Report(DiagnosticDescriptors.DeploymentInaccessible, identifier, name, accessProblem!);
                    canEmit = false;
                }

                var implementationType = container.ToDisplayString(s_typeOfFormat);
                var deploymentName = ReadName(attribute) ?? name;
                var options = ParseOptions(attribute, deploymentName);
                var display = container.Name + "." + name;
                var parsed = ParseMethod(method, display, identifier, isFunction: true, index: 0);
                if (parsed is null)
                    canEmit = false;

                var containerMetadataName = MetadataName(container);
                var key = containerMetadataName + "." + name + "(" + string.Join(",", method.Parameters.Select(p => p.Type.ToDisplayString(s_signatureFormat))) + ")";
                var model = new DeploymentModel(
                    Key: key,
                    HintName: containerMetadataName.Replace('+', '.') + "." + name,
                    Namespace: Namespace(container.ContainingNamespace),
                    ContainingTypes: EquatableArray<ContainingTypeModel>.Empty,
                    TypeName: Escape(container.Name),
                    TypeKeyword: "class",
                    ImplementationType: implementationType,
                    DeploymentName: deploymentName,
                    HandleName: name + HandleSuffix,
                    IsPublic: access == Access.Public,
                    FunctionName: name,
                    Constructors: EquatableArray<ConstructorModel>.Empty,
                    Methods: parsed is null ? EquatableArray<MethodModel>.Empty : new EquatableArray<MethodModel>(new[] { parsed.Value.Model }),
                    Options: options,
                    UserConfigType: null,
                    UserConfigTypeOf: null);
                return Result(canEmit ? model : null, identifier, containerMetadataName.Replace('+', '.') + "." + name);
            }

            private ParseResult Result(DeploymentModel? model, LocationInfo? identifier, string displayName)
            {
                var handle = model is null ? null : new HandleDeclaration(model.HandleFullName, model.Key, displayName, identifier);
                return new ParseResult(model, new EquatableArray<DiagnosticInfo>(_diagnostics.ToArray()), handle);
            }

            private EquatableArray<ConstructorModel> ParseConstructors(
                INamedTypeSymbol type, TypeDeclarationSyntax classSyntax, LocationInfo? identifier, string className, ref bool canEmit)
            {
                var result = new List<ConstructorModel>();
                var bindSignatures = new Dictionary<string, string>(StringComparer.Ordinal);
                var index = 0;
                foreach (var ctor in type.InstanceConstructors)
                {
                    _cancellationToken.ThrowIfCancellationRequested();
                    if (ctor.DeclaredAccessibility != Accessibility.Public)
                        continue;
                    var ctorIndex = index++;
                    var ctorDisplay = className + "(" + string.Join(", ", ctor.Parameters.Select(p => p.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat))) + ")";
                    var valid = true;
                    var parameters = new List<ParameterModel>();
                    foreach (var p in ctor.Parameters)
                    {
                        var parameterSyntax = SyntaxOf(p) as ParameterSyntax;
                        var where = parameterSyntax is null ? identifier : LocationInfo.From(parameterSyntax);
                        var subject = "Parameter '" + p.Name + "' of constructor '" + ctorDisplay + "'";
                        if (!CheckParameter(p, subject, where))
                        {
                            valid = false;
                            continue;
                        }
                        parameters.Add(ParseConstructorParameter(p, parameterSyntax));
                    }
                    if (!valid)
                        continue;

                    var bound = parameters.Where(p => p.Kind is not (ParameterKind.Context or ParameterKind.Service or ParameterKind.OptionalService)).ToList();
                    var bindSignature = string.Join(", ", bound.Select(p => p.Kind switch
                    {
                        ParameterKind.Handle or ParameterKind.UnresolvedHandle => "Application<" + p.SignatureType + ">",
                        ParameterKind.UntypedHandle => "Application",
                        _ => p.SignatureType,
                    }));
                    if (bindSignatures.TryGetValue(bindSignature, out var first))
                    {
                        Report(DiagnosticDescriptors.DuplicateBind, ConstructorLocation(ctor, classSyntax, identifier), first, ctorDisplay, className, bindSignature);
                        continue;
                    }
                    bindSignatures.Add(bindSignature, ctorDisplay);
                    result.Add(new ConstructorModel(ctorIndex, new EquatableArray<ParameterModel>(WithTrailingDefaults(parameters, bindOnly: true))));
                }
                if (index == 0)
                {
                    Report(DiagnosticDescriptors.NoPublicConstructor, identifier, className);
                    canEmit = false;
                }
                return new EquatableArray<ConstructorModel>(result.ToArray());
            }

            private ParameterModel ParseConstructorParameter(IParameterSymbol p, ParameterSyntax? syntax)
            {
                var type = p.Type;
                var model = Parameter(p, ParameterKind.Value);
                if (Is(type, _known.ReplicaContext))
                    return model with { Kind = ParameterKind.Context, DefaultValue = null };
                // By name on purpose (the one type not looked up in KnownTypeSymbols): Serve's, ASP.NET Core's or a
                // project's own FromServicesAttribute all mark an injected parameter (see the InjectedParameters snapshot).
                if (p.GetAttributes().Any(a => a.AttributeClass?.Name == "FromServicesAttribute"))
                {
                    var optional = type.IsReferenceType && type.NullableAnnotation == NullableAnnotation.Annotated;
                    return model with { Kind = optional ? ParameterKind.OptionalService : ParameterKind.Service, DefaultValue = null };
                }
                // 'YHandle?' of a type that does not exist yet binds as Nullable<YHandle>.
                var unresolved = type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable
                                 && nullable.TypeArguments[0].TypeKind == TypeKind.Error
                    ? nullable.TypeArguments[0]
                    : type;
                if (unresolved.TypeKind == TypeKind.Error && unresolved.Name.Length > HandleSuffix.Length && unresolved.Name.EndsWith(HandleSuffix, StringComparison.Ordinal))
                {
                    var written = syntax?.Type?.ToString() ?? unresolved.Name;
                    return model with { Kind = ParameterKind.UnresolvedHandle, Type = written, TypeOf = written, SignatureType = written, DefaultValue = null };
                }
                if (Is(type, _known.DeploymentHandle))
                    return model with { Kind = ParameterKind.UntypedHandle, DefaultValue = null };
                for (var b = type.BaseType; b is not null; b = b.BaseType)
                {
                    if (Is(b, _known.DeploymentHandle))
                    {
                        var handle = type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat);
                        return model with { Kind = ParameterKind.Handle, Type = handle, TypeOf = handle, DefaultValue = null };
                    }
                }
                return model;
            }

            private EquatableArray<MethodModel> ParseMethods(INamedTypeSymbol type, string className, string implementationType, IMethodSymbol? reconfigure)
            {
                var result = new List<MethodModel>();
                var byHandleSignature = new Dictionary<string, string>(StringComparer.Ordinal);
                var byId = new Dictionary<int, string>();
                foreach (var member in type.GetMembers())
                {
                    _cancellationToken.ThrowIfCancellationRequested();
                    if (member is not IMethodSymbol method
                        || method.MethodKind != MethodKind.Ordinary
                        || method.IsStatic
                        || method.IsImplicitlyDeclared
                        || method.DeclaredAccessibility != Accessibility.Public
                        || IsLifecycleMethod(method, reconfigure))
                        continue;

                    var display = className + "." + method.Name;
                    var methodSyntax = SyntaxOf(method) as MethodDeclarationSyntax;
                    var identifier = methodSyntax is null ? null : LocationInfo.From(methodSyntax.Identifier);
                    if (method.IsGenericMethod)
                    {
                        Report(DiagnosticDescriptors.GenericMethod, identifier, display);
                        continue;
                    }
                    var parsed = ParseMethod(method, display, identifier, isFunction: false, index: result.Count);
                    if (parsed is null)
                        continue;
                    var (model, signature) = parsed.Value;

                    if (model.HandleName is "InvokeAsync" or "InvokeCallAsync" or "InvokeVoidAsync")
                    {
                        Report(DiagnosticDescriptors.ReservedHandleMethodName, identifier, display, model.HandleName);
                        continue;
                    }
                    if (model.HasGraphShape && model.IsHiddenGraphBuilder)
                        Report(DiagnosticDescriptors.HiddenGraphBuilder, identifier, display, className + "Handle", model.Name);
                    var handleSignature = model.HandleName + "(" + string.Join(", ", model.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).Select(p => p.SignatureType)) + ")";
                    if (byHandleSignature.TryGetValue(handleSignature, out var previous))
                    {
                        Report(DiagnosticDescriptors.DuplicateHandleMethod, identifier, previous, signature, className, handleSignature);
                        continue;
                    }
                    if (byId.TryGetValue(model.MethodId, out var sameId))
                    {
                        Report(DiagnosticDescriptors.MethodIdCollision, identifier, sameId, signature, className, model.MethodId.ToString(CultureInfo.InvariantCulture));
                        continue;
                    }
                    byHandleSignature.Add(handleSignature, signature);
                    byId.Add(model.MethodId, signature);
                    result.Add(model);
                }
                return new EquatableArray<MethodModel>(result.ToArray());
            }

            private bool IsLifecycleMethod(IMethodSymbol method, IMethodSymbol? reconfigure)
            {
                if (method.Name is "Dispose" or "DisposeAsync" or "CheckHealthAsync" || IsMultiplexed(method))
                    return true;
                if (reconfigure is not null && SymbolEqualityComparer.Default.Equals(method, reconfigure))
                    return true;
                if (method.IsOverride)
                {
                    var root = method;
                    while (root.OverriddenMethod is { } overridden)
                        root = overridden;
                    if (root.ContainingType.SpecialType == SpecialType.System_Object)
                        return true;
                }
                return false;
            }

            /// <summary>Parses one handle method (or a function); null, with diagnostics reported, when it cannot be one.</summary>
            private (MethodModel Model, string Signature)? ParseMethod(IMethodSymbol method, string display, LocationInfo? identifier, bool isFunction, int index)
            {
                var valid = true;
                var methodSyntax = SyntaxOf(method) as MethodDeclarationSyntax;
                var parameters = new List<ParameterModel>();
                foreach (var p in method.Parameters)
                {
                    var parameterSyntax = SyntaxOf(p);
                    var where = parameterSyntax is null ? identifier : LocationInfo.From(parameterSyntax);
                    if (!CheckParameter(p, "Parameter '" + p.Name + "' of method '" + display + "'", where))
                    {
                        valid = false;
                        continue;
                    }
                    parameters.Add(Is(p.Type, _known.CancellationToken)
                        ? Parameter(p, ParameterKind.CancellationToken) with { DefaultValue = null }
                        : Parameter(p, ParameterKind.Value));
                }

                var returnLocation = methodSyntax is null ? identifier : LocationInfo.From(methodSyntax.ReturnType);
                if (method.ReturnsByRef || method.ReturnsByRefReadonly)
                {
                    Report(DiagnosticDescriptors.ByReference, returnLocation, "Method '" + display + "' returns by reference", "Return the value itself: remove 'ref' from the return type.");
                    valid = false;
                }
                else if (method.ReturnType.TypeKind is TypeKind.Pointer or TypeKind.FunctionPointer)
                {
                    Report(DiagnosticDescriptors.ByReference, returnLocation, "Method '" + display + "' returns the pointer type '" + Minimal(method.ReturnType) + "'", "Return a value (for example an array or an index) instead.");
                    valid = false;
                }
                else if (method.ReturnType.IsRefLikeType)
                {
                    Report(DiagnosticDescriptors.RefLikeType, returnLocation, "The result of method '" + display + "'", Minimal(method.ReturnType), RefLikeAlternative(method.ReturnType));
                    valid = false;
                }
                else if (GraphNodeValueType(Shape(method).Result) is { } valueType)
                {
                    Report(DiagnosticDescriptors.GraphNodeParameter, returnLocation, "The result of method '" + display + "'", Minimal(Shape(method).Result!), valueType);
                    valid = false;
                }
                if (!valid)
                    return null;

                var (shape, result) = Shape(method);
                var handleParameters = parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
                var signature = method.Name + "(" + string.Join(",", handleParameters.Select(p => p.SignatureType)) + ")";
                var handleName = isFunction ? "CallAsync"
                    : method.Name.EndsWith("Async", StringComparison.Ordinal) ? method.Name
                    : method.Name + "Async";
                var model = new MethodModel(
                    Name: method.Name,
                    HandleName: handleName,
                    MethodId: MethodId(signature),
                    IsCall: isFunction || method.Name is "Call" or "CallAsync",
                    Shape: shape,
                    ResultType: result?.ToDisplayString(s_typeFormat),
                    ResultTypeOf: result?.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat),
                    Parameters: new EquatableArray<ParameterModel>(WithTrailingDefaults(parameters, bindOnly: false)),
                    Index: index);
                if (WithBatch(model, method, display, identifier, isFunction) is not { } handleModel)
                    return null;
                model = WithHttp(handleModel, method);
                return (model, signature);
            }

            /// <summary>Adds the ASP.NET Core <c>[HttpGet]</c>-style route of a method, matched by attribute name (no reference needed).</summary>
            private MethodModel WithHttp(MethodModel model, IMethodSymbol method)
            {
                foreach (var attribute in method.GetAttributes())
                {
                    var type = attribute.AttributeClass;
                    var verb = Is(type, _known.HttpGetAttribute) ? "GET"
                        : Is(type, _known.HttpPostAttribute) ? "POST"
                        : Is(type, _known.HttpPutAttribute) ? "PUT"
                        : Is(type, _known.HttpDeleteAttribute) ? "DELETE"
                        : null;
                    if (verb is null)
                        continue;
                    var template = attribute.ConstructorArguments.Length > 0 && attribute.ConstructorArguments[0].Value is string t ? t : "";
                    var bindings = new List<HttpBindingModel>();
                    foreach (var p in method.Parameters)
                    {
                        if (Is(p.Type, _known.CancellationToken))
                            continue;
                        var source = HttpBindingSource.Auto;
                        var name = p.Name;
                        foreach (var a in p.GetAttributes())
                        {
                            var from = a.AttributeClass;
                            HttpBindingSource? s = Is(from, _known.FromRouteAttribute) ? HttpBindingSource.Route
                                : Is(from, _known.FromQueryAttribute) ? HttpBindingSource.Query
                                : Is(from, _known.FromBodyAttribute) ? HttpBindingSource.Body
                                : Is(from, _known.FromHeaderAttribute) ? HttpBindingSource.Header
                                : null;
                            if (s is null)
                                continue;
                            source = s.Value;
                            foreach (var named in a.NamedArguments)
                            {
                                if (named.Key == "Name" && named.Value.Value is string n && n.Length > 0)
                                    name = n;
                            }
                        }
                        bindings.Add(new HttpBindingModel(source, name));
                    }
                    foreach (var routeValue in RouteValues(template))
                    {
                        if (!bindings.Any(b => b.Source is HttpBindingSource.Route or HttpBindingSource.Auto
                                && string.Equals(b.Name, routeValue, StringComparison.OrdinalIgnoreCase)))
                        {
                            Report(DiagnosticDescriptors.RouteValueWithoutParameter, LocationInfo.From(attribute.ApplicationSyntaxReference?.GetSyntax()),
                                template, method.Name, routeValue);
                        }
                    }
                    return model with { Http = new HttpEndpointModel(verb, template, new EquatableArray<HttpBindingModel>(bindings.ToArray())) };
                }
                return model;
            }

            /// <summary>The names of a route template's values: <c>{id:int}</c>, <c>{*rest}</c> and <c>{page?}</c> give id, rest, page.</summary>
            private static IEnumerable<string> RouteValues(string template)
            {
                var start = 0;
                while ((start = template.IndexOf('{', start)) >= 0)
                {
                    if (start + 1 < template.Length && template[start + 1] == '{')
                    {
                        start += 2;
                        continue;
                    }
                    var end = template.IndexOf('}', start);
                    if (end < 0)
                        yield break;
                    var name = template.Substring(start + 1, end - start - 1).TrimStart('*');
                    var cut = name.IndexOfAny(new[] { ':', '=', '?' });
                    if (cut >= 0)
                        name = name.Substring(0, cut);
                    if (name.Length > 0)
                        yield return name;
                    start = end + 1;
                }
            }

            private (ResultShape Shape, ITypeSymbol? Result) Shape(IMethodSymbol method)
            {
                if (method.ReturnsVoid)
                    return (ResultShape.Void, null);
                var type = method.ReturnType;
                if (Is(type, _known.Task))
                    return (ResultShape.Task, null);
                if (Is(type, _known.ValueTask))
                    return (ResultShape.ValueTask, null);
                if (type is INamedTypeSymbol { Arity: 1 } generic)
                {
                    var argument = generic.TypeArguments[0];
                    if (Is(type, _known.TaskOfT))
                        return (ResultShape.TaskOfT, argument);
                    if (Is(type, _known.ValueTaskOfT))
                        return (ResultShape.ValueTaskOfT, argument);
                    if (Is(type, _known.IAsyncEnumerable))
                        return (ResultShape.Stream, argument);
                }
                return (ResultShape.Value, type);
            }

            /// <summary>Reports ref/out/in/pointer and by-ref-like parameters; true when the parameter can be passed by value.</summary>
            private bool CheckParameter(IParameterSymbol p, string subject, LocationInfo? where)
            {
                if (p.RefKind != RefKind.None)
                {
                    var modifier = p.RefKind switch
                    {
                        RefKind.Out => "out",
                        RefKind.In => "in",
                        RefKind.RefReadOnlyParameter => "ref readonly",
                        _ => "ref",
                    };
                    var fix = p.RefKind == RefKind.Out
                        ? "Remove 'out' and return the value instead (a tuple or record for several)."
                        : "Remove '" + modifier + "' and pass the value itself.";
                    Report(DiagnosticDescriptors.ByReference, where, subject + " is '" + modifier + "'", fix);
                    return false;
                }
                if (p.Type.TypeKind is TypeKind.Pointer or TypeKind.FunctionPointer)
                {
                    Report(DiagnosticDescriptors.ByReference, where, subject + " has the pointer type '" + Minimal(p.Type) + "'", "Pass a value (for example an array) instead.");
                    return false;
                }
                if (p.Type.IsRefLikeType)
                {
                    Report(DiagnosticDescriptors.RefLikeType, where, subject, Minimal(p.Type), RefLikeAlternative(p.Type));
                    return false;
                }
                if (GraphNodeValueType(p.Type) is { } valueType)
                {
                    Report(DiagnosticDescriptors.GraphNodeParameter, where, subject, Minimal(p.Type), valueType);
                    return false;
                }
                return true;
            }

            /// <summary>For a Serve graph node type (<c>GraphNode&lt;TInput, T&gt;</c>, <c>InputNode&lt;T&gt;</c>, <c>GraphNode</c>), the value type to declare instead; else null.</summary>
            private string? GraphNodeValueType(ITypeSymbol? type)
            {
                for (var t = type as INamedTypeSymbol; t is not null; t = t.BaseType)
                {
                    if (Is(t, _known.InputNode))
                        return Minimal(t.TypeArguments[0]);
                    if (Is(t, _known.GraphNodeOfT))
                        return Minimal(t.TypeArguments[1]);
                    if (Is(t, _known.GraphNode))
                        return "object";
                }
                return null;
            }

            private string RefLikeAlternative(ITypeSymbol type)
            {
                if (type is INamedTypeSymbol { Arity: 1 } named)
                {
                    var item = Minimal(named.TypeArguments[0]);
                    if (Is(named, _known.ReadOnlySpan))
                        return item == "char" ? "'string' or 'ReadOnlyMemory<char>'" : "'" + item + "[]' or 'ReadOnlyMemory<" + item + ">'";
                    if (Is(named, _known.Span))
                        return "'" + item + "[]' or 'Memory<" + item + ">'";
                }
                return "a class, array or non-ref struct type";
            }

            private static ParameterModel Parameter(IParameterSymbol p, ParameterKind kind) => new(
                Name: p.Name,
                Type: p.Type.ToDisplayString(s_typeFormat),
                TypeOf: p.Type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat),
                SignatureType: p.Type.ToDisplayString(s_signatureFormat),
                Kind: kind,
                DefaultValue: DefaultValue(p),
                NotNull: p.Type.IsReferenceType && p.NullableAnnotation == NullableAnnotation.NotAnnotated);

            private (string? Type, string? TypeOf, IMethodSymbol? Reconfigure) FindReconfigurable(INamedTypeSymbol type)
            {
                foreach (var iface in type.AllInterfaces)
                {
                    if (!Is(iface, _known.IReconfigurable))
                        continue;
                    var config = iface.TypeArguments[0];
                    IMethodSymbol? implementation = null;
                    foreach (var member in iface.GetMembers("ReconfigureAsync"))
                    {
                        if (type.FindImplementationForInterfaceMember(member) is IMethodSymbol m)
                            implementation = m;
                    }
                    return (config.ToDisplayString(s_typeFormat), config.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(s_typeOfFormat), implementation);
                }
                return (null, null, null);
            }

            private LocationInfo? ConstructorLocation(IMethodSymbol ctor, TypeDeclarationSyntax classSyntax, LocationInfo? fallback)
            {
                return SyntaxOf(ctor) switch
                {
                    ConstructorDeclarationSyntax c => LocationInfo.From(c.Identifier),
                    TypeDeclarationSyntax { ParameterList: { } list } => LocationInfo.From(list),
                    _ => classSyntax.ParameterList is { } primary ? LocationInfo.From(primary) : fallback,
                };
            }

            private SyntaxNode? SyntaxOf(ISymbol symbol)
            {
                var references = symbol.DeclaringSyntaxReferences;
                return references.Length == 0 ? null : references[0].GetSyntax(_cancellationToken);
            }

            private void Report(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] arguments)
                => _diagnostics.Add(DiagnosticInfo.Create(descriptor, location, arguments));

            private enum Access
            {
                Public,
                Internal,
                Inaccessible,
            }

            private static Access EffectiveAccess(ISymbol symbol, out string? problem)
            {
                problem = null;
                var access = Access.Public;
                for (ISymbol? current = symbol; current is not null and not INamespaceSymbol; current = current.ContainingType)
                {
                    if (current is INamedTypeSymbol { IsFileLocal: true })
                    {
                        problem = SymbolEqualityComparer.Default.Equals(current, symbol)
                            ? "file-local"
                            : "inside '" + current.Name + "', which is file-local";
                        return Access.Inaccessible;
                    }
                    switch (current.DeclaredAccessibility)
                    {
                        case Accessibility.Public:
                            break;
                        case Accessibility.Internal:
                        case Accessibility.ProtectedOrInternal:
                            access = Access.Internal;
                            break;
                        default:
                            var word = current.DeclaredAccessibility switch
                            {
                                Accessibility.Protected => "protected",
                                Accessibility.ProtectedAndInternal => "private protected",
                                _ => "private",
                            };
                            problem = SymbolEqualityComparer.Default.Equals(current, symbol)
                                ? word
                                : "inside '" + current.Name + "', which is " + word;
                            return Access.Inaccessible;
                    }
                }
                return access;
            }

            /// <summary>FNV-1a, 32 bits, over the UTF-8 bytes of the signature: stable across builds, machines and runtimes.</summary>
            internal static int MethodId(string signature)
            {
                unchecked
                {
                    var hash = 2166136261u;
                    foreach (var b in Encoding.UTF8.GetBytes(signature))
                    {
                        hash ^= b;
                        hash *= 16777619u;
                    }
                    return (int)hash;
                }
            }

            private static bool Is(ITypeSymbol? type, INamedTypeSymbol? known) => KnownTypeSymbols.Is(type, known);

            private static string Minimal(ITypeSymbol type) => type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);

            private static string MetadataName(INamedTypeSymbol type)
            {
                var name = type.MetadataName;
                for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
                    name = outer.MetadataName + "+" + name;
                var ns = type.ContainingNamespace;
                return ns is null || ns.IsGlobalNamespace ? name : ns.ToDisplayString() + "." + name;
            }

            private static string Namespace(INamespaceSymbol? ns)
            {
                var parts = new List<string>();
                for (var current = ns; current is not null && !current.IsGlobalNamespace; current = current.ContainingNamespace)
                    parts.Insert(0, Escape(current.Name));
                return string.Join(".", parts);
            }

            private static string Keyword(TypeDeclarationSyntax declaration) => declaration switch
            {
                RecordDeclarationSyntax r when r.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) => "record struct",
                RecordDeclarationSyntax => "record",
                StructDeclarationSyntax => "struct",
                InterfaceDeclarationSyntax => "interface",
                _ => "class",
            };

            internal static string Escape(string identifier)
                => SyntaxFacts.GetKeywordKind(identifier) != SyntaxKind.None ? "@" + identifier : identifier;
        }
    }
}
