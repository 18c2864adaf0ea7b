using System;
using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    internal static partial class Emitter
    {
        // One module initializer per assembly registers every definition, so the runtime never scans assemblies.
        public static string EmitManifest(EquatableArray<ManifestEntry> entries)
        {
            var w = new SourceWriter();
            WriteFileHeader(w);
            w.WriteLines($$"""
                namespace Serve.Generated
                {
                    /// <summary>Registers this assembly's Serve deployments when the module loads.</summary>
                    {{GeneratedCodeAttribute}}
                    internal static class ServeManifest
                    {
                        [global::System.Runtime.CompilerServices.ModuleInitializer]
                        internal static void Register()
                        {
                """);
            w.Indent();
            w.Indent();
            w.Indent();
            foreach (var entry in entries.OrderBy(e => e.SortKey, StringComparer.Ordinal))
                w.WriteLine("global::Serve.DeploymentRegistry.Register(" + entry.DefinitionField + ");");
            w.CloseBlock();
            w.CloseBlock();
            w.CloseBlock();
            return w.ToString();
        }
    }
}
