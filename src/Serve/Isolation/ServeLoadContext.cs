using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;

namespace Serve.Isolation;

/// <summary>
/// A collectible load context for one (deployment, code version, environment). Shared assemblies fall through to the
/// default context so their types cross by reference; everything else resolves from the deployment's folder with its
/// <c>.deps.json</c>, giving the deployment its own statics and its own versions of its private dependencies.
/// </summary>
internal sealed class ServeLoadContext : AssemblyLoadContext
{
    private readonly AssemblyDependencyResolver _resolver;
    private readonly HashSet<string> _contracts;
    private readonly ConcurrentDictionary<string, DeploymentDefinition> _definitions = new(StringComparer.Ordinal);

    private readonly object _serializersGate = new();
    private Dictionary<BoundaryFormat, IBoundarySerializer>? _otherSerializers;

    public ServeLoadContext(string name, string mainAssemblyPath, IReadOnlyList<string> contracts, IBoundarySerializer serializer, BoundaryFormat format = BoundaryFormat.HostDefault)
        : base(name, isCollectible: true)
    {
        Format = format;
        MainAssemblyPath = mainAssemblyPath;
        Directory = Path.GetDirectoryName(mainAssemblyPath)!;
        _resolver = new AssemblyDependencyResolver(mainAssemblyPath);
        _contracts = new HashSet<string>(contracts, StringComparer.OrdinalIgnoreCase);
        Serializer = serializer;
    }

    public string MainAssemblyPath { get; }

    public string Directory { get; }

    /// <summary>The serializer for values of this context's types; it (and its type cache) dies with the context.</summary>
    public IBoundarySerializer Serializer { get; private set; }

    /// <summary>The format of <see cref="Serializer"/>: the deployment's <see cref="RuntimeEnv.BoundaryFormat"/>.</summary>
    public BoundaryFormat Format { get; }

    /// <summary>
    /// A serializer for values of this context's types in <paramref name="format"/>: <see cref="Serializer"/> for its own
    /// format, else one made on first use (for calls from this context into a deployment of another format); all die with the context.
    /// </summary>
    public IBoundarySerializer SerializerFor(BoundaryFormat format, Func<BoundaryFormat, IBoundarySerializer> create)
    {
        if (format == Format)
            return Serializer;
        lock (_serializersGate)
        {
            _otherSerializers ??= [];
            if (!_otherSerializers.TryGetValue(format, out var serializer))
                _otherSerializers[format] = serializer = create(format);
            return serializer;
        }
    }

    /// <summary>True when <paramref name="assemblyName"/> always comes from the default context for this context.</summary>
    public bool IsShared(string? assemblyName) =>
        assemblyName is null || SharedAssemblies.IsAlwaysShared(assemblyName) || _contracts.Contains(assemblyName);

    /// <summary>Where this context would load <paramref name="name"/> from, or <c>null</c> when it is not in the folder.</summary>
    public string? Resolve(AssemblyName name)
    {
        var path = _resolver.ResolveAssemblyToPath(name);
        if (path is not null && File.Exists(path))
            return path;
        var local = Path.Combine(Directory, name.Name + ".dll");
        return File.Exists(local) ? local : null;
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (IsShared(assemblyName.Name))
            return null;
        var path = Resolve(assemblyName);
        // Not in the folder: let the default context try (an application assembly or a framework facade).
        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        // Native libraries load once per process and are never unloaded with the context.
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }

    /// <summary>Called (through <see cref="DeploymentRegistry.Register"/>) by the generated manifests of this context's assemblies.</summary>
    public void Register(DeploymentDefinition definition) => _definitions[definition.HandleType.FullName!] = definition;

    /// <summary>The definition registered in this context whose handle type has <paramref name="handleTypeName"/> as full name.</summary>
    public DeploymentDefinition? FindByHandleType(string handleTypeName) =>
        _definitions.TryGetValue(handleTypeName, out var d) ? d : null;

    /// <summary>
    /// Forgets everything that refers to this context's own types, then unloads. After <see cref="AssemblyLoadContext.Unload"/>
    /// the runtime holds the context object strongly until its loader allocator is collected; a context that still
    /// referenced its own types (registered definitions, a serializer's type cache) would keep itself alive forever.
    /// </summary>
    public void Release()
    {
        _definitions.Clear();
        Serializer = null!;
        lock (_serializersGate)
            _otherSerializers = null;
        Unload();
    }

    public override string ToString() => Name ?? "ServeLoadContext";
}

/// <summary>Which assemblies every isolated context takes from the default context.</summary>
internal static class SharedAssemblies
{
    private static readonly Lazy<HashSet<string>> s_always = new(Build);
    private static readonly Lazy<HashSet<string>> s_trusted = new(BuildTrusted);

    /// <summary>The .NET and ASP.NET Core shared frameworks and Serve's own assemblies.</summary>
    public static bool IsAlwaysShared(string name) => s_always.Value.Contains(name);

    /// <summary>True when the default context can load <paramref name="name"/> (it is on the application's trusted list).</summary>
    public static bool IsTrusted(string name) => s_trusted.Value.Contains(name);

    public static IEnumerable<string> FrameworkDirectories()
    {
        yield return Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        yield return Path.GetDirectoryName(typeof(Microsoft.AspNetCore.Http.HttpContext).Assembly.Location)!;
    }

    private static HashSet<string> Build()
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Serve", "Serve.Cuda", "mscorlib", "netstandard" };
        foreach (var directory in FrameworkDirectories().Distinct(StringComparer.Ordinal))
        {
            if (string.IsNullOrEmpty(directory) || !System.IO.Directory.Exists(directory))
                continue;
            foreach (var file in System.IO.Directory.EnumerateFiles(directory, "*.dll"))
                names.Add(Path.GetFileNameWithoutExtension(file));
        }
        return names;
    }

    private static HashSet<string> BuildTrusted()
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string list)
        {
            foreach (var path in list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
                names.Add(Path.GetFileNameWithoutExtension(path));
        }
        return names;
    }
}
