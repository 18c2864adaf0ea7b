using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace Serve.Generators.Helpers
{
    /// <summary>
    /// The types the parser recognizes, looked up once per compilation (as System.Text.Json's generator does) and
    /// compared with <see cref="SymbolEqualityComparer"/> instead of by name. A type the compilation does not have is
    /// null and matches nothing. Symbols never leave the parser: this object is built inside the
    /// <c>ForAttributeWithMetadataName</c> transform and never enters a model.
    /// </summary>
    internal sealed class KnownTypeSymbols
    {
        // One lookup per compilation, shared by every [Deployment] the transform parses in it; the table holds the
        // compilation weakly, so an old compilation and its symbols are collected.
        private static readonly ConditionalWeakTable<Compilation, KnownTypeSymbols> s_cache = new();

        private KnownTypeSymbols(Compilation compilation)
        {
            DeploymentAttribute = Find(compilation, "Serve.DeploymentAttribute");
            BatchAttribute = Find(compilation, "Serve.BatchAttribute");
            MultiplexedAttribute = Find(compilation, "Serve.MultiplexedAttribute");
            ReplicaContext = Find(compilation, "Serve.ReplicaContext");
            DeploymentHandle = Find(compilation, "Serve.DeploymentHandle");
            IReconfigurable = Find(compilation, "Serve.IReconfigurable`1");
            GraphNode = Find(compilation, "Serve.GraphNode");
            GraphNodeOfT = Find(compilation, "Serve.GraphNode`2");
            InputNode = Find(compilation, "Serve.InputNode`1");

            CancellationToken = Find(compilation, "System.Threading.CancellationToken");
            Task = Find(compilation, "System.Threading.Tasks.Task");
            TaskOfT = Find(compilation, "System.Threading.Tasks.Task`1");
            ValueTask = Find(compilation, "System.Threading.Tasks.ValueTask");
            ValueTaskOfT = Find(compilation, "System.Threading.Tasks.ValueTask`1");
            IAsyncEnumerable = Find(compilation, "System.Collections.Generic.IAsyncEnumerable`1");
            IReadOnlyList = Find(compilation, "System.Collections.Generic.IReadOnlyList`1");
            Span = Find(compilation, "System.Span`1");
            ReadOnlySpan = Find(compilation, "System.ReadOnlySpan`1");

            // ASP.NET Core's routing attributes: found in a reference or in source, so a project need not reference
            // ASP.NET Core to declare them.
            HttpGetAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.HttpGetAttribute");
            HttpPostAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.HttpPostAttribute");
            HttpPutAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.HttpPutAttribute");
            HttpDeleteAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.HttpDeleteAttribute");
            FromRouteAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.FromRouteAttribute");
            FromQueryAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.FromQueryAttribute");
            FromBodyAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.FromBodyAttribute");
            FromHeaderAttribute = Find(compilation, "Microsoft.AspNetCore.Mvc.FromHeaderAttribute");
        }

        // Like System.Text.Json's GetBestTypeByMetadataName: GetTypeByMetadataName answers null when two references
        // define the name; then the one type this compilation can see is the one its code binds to.
        private static INamedTypeSymbol? Find(Compilation compilation, string metadataName)
        {
            if (compilation.GetTypeByMetadataName(metadataName) is { } type)
                return type;
            INamedTypeSymbol? best = null;
            foreach (var candidate in compilation.GetTypesByMetadataName(metadataName))
            {
                if (!compilation.IsSymbolAccessibleWithin(candidate, compilation.Assembly))
                    continue;
                if (best is not null)
                    return null;
                best = candidate;
            }
            return best;
        }

        public static KnownTypeSymbols For(Compilation compilation) => s_cache.GetValue(compilation, static c => new KnownTypeSymbols(c));

        public INamedTypeSymbol? DeploymentAttribute { get; }
        public INamedTypeSymbol? BatchAttribute { get; }
        public INamedTypeSymbol? MultiplexedAttribute { get; }
        public INamedTypeSymbol? ReplicaContext { get; }
        public INamedTypeSymbol? DeploymentHandle { get; }
        public INamedTypeSymbol? IReconfigurable { get; }
        public INamedTypeSymbol? GraphNode { get; }
        public INamedTypeSymbol? GraphNodeOfT { get; }
        public INamedTypeSymbol? InputNode { get; }

        public INamedTypeSymbol? CancellationToken { get; }
        public INamedTypeSymbol? Task { get; }
        public INamedTypeSymbol? TaskOfT { get; }
        public INamedTypeSymbol? ValueTask { get; }
        public INamedTypeSymbol? ValueTaskOfT { get; }
        public INamedTypeSymbol? IAsyncEnumerable { get; }
        public INamedTypeSymbol? IReadOnlyList { get; }
        public INamedTypeSymbol? Span { get; }
        public INamedTypeSymbol? ReadOnlySpan { get; }

        public INamedTypeSymbol? HttpGetAttribute { get; }
        public INamedTypeSymbol? HttpPostAttribute { get; }
        public INamedTypeSymbol? HttpPutAttribute { get; }
        public INamedTypeSymbol? HttpDeleteAttribute { get; }
        public INamedTypeSymbol? FromRouteAttribute { get; }
        public INamedTypeSymbol? FromQueryAttribute { get; }
        public INamedTypeSymbol? FromBodyAttribute { get; }
        public INamedTypeSymbol? FromHeaderAttribute { get; }

        /// <summary>True when <paramref name="type"/> is <paramref name="known"/> or constructed from it (<c>Task&lt;int&gt;</c> is <c>Task`1</c>).</summary>
        public static bool Is(ITypeSymbol? type, INamedTypeSymbol? known)
            => type is not null && known is not null && SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, known);
    }
}
