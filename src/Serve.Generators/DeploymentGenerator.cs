using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    /// <summary>
    /// Generates, for every <c>[Deployment]</c> class or function, a typed handle, <c>Bind(...)</c> builders, a
    /// deployment definition with a switch-based invoker, and one manifest that registers them all. This file only
    /// wires the pipeline; see <c>DeploymentGenerator.Parser.cs</c> and <c>Emitter.*.cs</c>.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed partial class DeploymentGenerator : IIncrementalGenerator
    {
        private const string DeploymentAttribute = "Serve.DeploymentAttribute";

        /// <inheritdoc />
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var parsed = context.SyntaxProvider
                .ForAttributeWithMetadataName(
                    DeploymentAttribute,
                    static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax or MethodDeclarationSyntax,
                    static (ctx, ct) => Parser.Parse(ctx, ct))
                .WithTrackingName(TrackingNames.Parse);

            var diagnostics = parsed
                .Select(static (result, _) => result.Diagnostics)
                .WithTrackingName(TrackingNames.Diagnostics);
            context.RegisterSourceOutput(diagnostics, static (spc, items) =>
            {
                foreach (var item in items)
                    spc.ReportDiagnostic(item.ToDiagnostic());
            });

            var models = parsed
                .Where(static result => result.Model is not null)
                .Select(static (result, _) => result.Model!)
                .WithTrackingName(TrackingNames.Models);

            var handleNames = models
                .Select(static (model, _) => model.ToHandleName())
                .Collect()
                .Select(static (names, _) => names.OrderBy(n => n.Key, StringComparer.Ordinal).ToEquatableArray())
                .WithTrackingName(TrackingNames.HandleNames);

            var resolved = models
                .Combine(handleNames)
                .Select(static (pair, _) => Parser.ResolveHandles(pair.Left, pair.Right))
                .WithTrackingName(TrackingNames.Resolved);
            context.RegisterSourceOutput(resolved, static (spc, model) =>
            {
                if (!model.IsDuplicateHandle)
                    AddSourceSafely(spc, model.DeploymentName, Emitter.HintName(model), () => Emitter.EmitDeployment(model));
            });

            var manifest = resolved
                .Where(static model => !model.IsDuplicateHandle)
                .Select(static (model, _) => model.ToManifestEntry())
                .Collect()
                .Select(static (entries, _) => entries.OrderBy(e => e.SortKey, StringComparer.Ordinal).ToEquatableArray())
                .WithTrackingName(TrackingNames.Manifest);
            context.RegisterSourceOutput(manifest, static (spc, entries) =>
            {
                if (!entries.IsEmpty)
                    AddSourceSafely(spc, "ServeManifest", Emitter.ManifestHintName, () => Emitter.EmitManifest(entries));
            });

            var handleDeclarations = parsed
                .Where(static result => result.Handle is not null)
                .Select(static (result, _) => result.Handle!)
                .Collect()
                .Select(static (handles, _) => handles.OrderBy(h => h.Key, StringComparer.Ordinal).ToEquatableArray())
                .WithTrackingName(TrackingNames.HandleDeclarations);
            context.RegisterSourceOutput(handleDeclarations, static (spc, handles) => ReportDuplicateHandles(spc, handles));
        }

        // A generator bug becomes a SERVE099 diagnostic naming the deployment, not a CS8785 that hides everything.
        private static void AddSourceSafely(SourceProductionContext context, string subject, string hintName, Func<string> emit)
        {
            var (source, error) = TryEmit(subject, emit);
            if (source is not null)
                context.AddSource(hintName, SourceText.From(source, System.Text.Encoding.UTF8));
            if (error is not null)
                context.ReportDiagnostic(error.ToDiagnostic());
        }

        internal static (string? Source, DiagnosticInfo? Error) TryEmit(string subject, Func<string> emit)
        {
            try
            {
                return (emit(), null);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return (null, DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, null, subject, e.GetType().Name + ": " + e.Message));
            }
        }

        private static void ReportDuplicateHandles(SourceProductionContext context, EquatableArray<HandleDeclaration> handles)
        {
            var first = new Dictionary<string, HandleDeclaration>(StringComparer.Ordinal);
            foreach (var handle in handles)
            {
                if (first.TryGetValue(handle.HandleFullName, out var winner))
                {
                    var info = DiagnosticInfo.Create(
                        DiagnosticDescriptors.DuplicateHandleType, handle.Location,
                        winner.DisplayName, handle.DisplayName, handle.HandleFullName.Substring("global::".Length));
                    context.ReportDiagnostic(info.ToDiagnostic());
                }
                else
                {
                    first.Add(handle.HandleFullName, handle);
                }
            }
        }
    }
}
