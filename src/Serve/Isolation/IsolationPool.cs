using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace Serve.Isolation;

/// <summary>Identifies one pooled context: one per deployment, code version and environment.</summary>
internal readonly record struct ContextKey(string Application, string Deployment, string CodeVersion, RuntimeEnv Env);

/// <summary>
/// The host's pool of isolated load contexts. A context is created on the first replica start of its
/// (deployment, code version, environment), shared by every replica of that version, kept warm while that version is
/// the deployment's current one (so the next replica of a scaling deployment starts without loading), and unloaded
/// once it is neither current nor used by a replica.
/// </summary>
internal sealed class IsolationPool
{
    private readonly object _gate = new();
    private readonly Dictionary<ContextKey, Entry> _entries = [];
    private readonly Dictionary<(string Application, string Deployment), ContextKey> _current = [];
    private readonly Func<IBoundarySerializer> _serializerFactory;
    private int _serial;

    public IsolationPool(Func<IBoundarySerializer> serializerFactory)
    {
        _serializerFactory = serializerFactory;
        HostSerializer = serializerFactory();
    }

    /// <summary>The serializer for values of default-context types, in the host's format.</summary>
    public IBoundarySerializer HostSerializer { get; }

    private readonly object _hostSerializersGate = new();
    private readonly Dictionary<BoundaryFormat, IBoundarySerializer> _hostSerializers = [];

    /// <summary>The key of a spec's context, or <c>null</c> when it runs in the shared default context.</summary>
    public static ContextKey? KeyOf(string application, Control.DeploymentSpec spec) =>
        spec.Options.RuntimeEnv.IsIsolated ? new ContextKey(application, spec.Name, spec.CodeVersion, spec.Options.RuntimeEnv) : null;

    /// <summary>A new serializer of <paramref name="format"/> (the host's own factory for <see cref="BoundaryFormat.HostDefault"/>).</summary>
    public IBoundarySerializer Create(BoundaryFormat format) => format switch
    {
        BoundaryFormat.Json => new JsonBoundarySerializer(),
        BoundaryFormat.MessagePack => new MessagePackBoundarySerializer(),
        _ => _serializerFactory(),
    };

    /// <summary>The format values crossing into <paramref name="definition"/>'s replicas use: its context's, or the host's.</summary>
    public static BoundaryFormat FormatOf(DeploymentDefinition definition) =>
        AssemblyLoadContext.GetLoadContext(definition.ImplementationType.Assembly) is ServeLoadContext context ? context.Format : BoundaryFormat.HostDefault;

    /// <summary>The serializer that owns values of <paramref name="definition"/>'s types, in <paramref name="format"/>.</summary>
    public IBoundarySerializer SerializerFor(DeploymentDefinition definition, BoundaryFormat format) =>
        AssemblyLoadContext.GetLoadContext(definition.ImplementationType.Assembly) is ServeLoadContext context
            ? context.SerializerFor(format, Create)
            : HostSerializerFor(format);

    /// <summary>The serializer for default-context values crossing into <paramref name="context"/> (in the context's format).</summary>
    public IBoundarySerializer HostSerializerFor(ServeLoadContext context) => HostSerializerFor(context.Format);

    private IBoundarySerializer HostSerializerFor(BoundaryFormat format)
    {
        if (format == BoundaryFormat.HostDefault)
            return HostSerializer;
        lock (_hostSerializersGate)
        {
            if (!_hostSerializers.TryGetValue(format, out var serializer))
                _hostSerializers[format] = serializer = Create(format);
            return serializer;
        }
    }

    /// <summary>
    /// A boundary from code built against <paramref name="caller"/> into replicas of <paramref name="callee"/>: both
    /// sides write and read the callee's format.
    /// </summary>
    public Boundary CreateBoundary(string deployment, DeploymentDefinition caller, DeploymentDefinition callee)
    {
        var format = FormatOf(callee);
        return Boundary.Create(deployment, caller, SerializerFor(caller, format), callee, SerializerFor(callee, format));
    }

    /// <summary>Marks <paramref name="key"/> as the deployment's current context (kept warm); <c>null</c> when it has none.</summary>
    public void SetCurrent(string application, string deployment, ContextKey? key)
    {
        lock (_gate)
        {
            if (_current.TryGetValue((application, deployment), out var old) && old != key && _entries.TryGetValue(old, out var entry) && entry.Leases == 0)
                Evict(entry);
            if (key is { } k)
                _current[(application, deployment)] = k;
            else
                _current.Remove((application, deployment));
        }
    }

    /// <summary>Takes a lease on the context of <paramref name="key"/>, loading it on first use (shared by concurrent starts).</summary>
    public async Task<ContextLease> AcquireAsync(ContextKey key, DeploymentDefinition caller)
    {
        Entry entry;
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out entry!) || !ReferenceEquals(entry.Caller, caller))
            {
                if (entry is not null && entry.Leases == 0)
                    Evict(entry);
                var name = $"{key.Application}/{key.Deployment}@{key.CodeVersion}#{++_serial}";
                entry = new Entry(key, caller, Task.Run(() => Load(key, caller, name)));
                _entries[key] = entry;
            }
            entry.Leases++;
        }
        try
        {
            var loaded = await entry.Loading.ConfigureAwait(false);
            return new ContextLease(this, entry, loaded);
        }
        catch
        {
            lock (_gate)
            {
                entry.Leases--;
                if (_entries.TryGetValue(key, out var current) && ReferenceEquals(current, entry))
                    _entries.Remove(key);
            }
            throw;
        }
    }

    private void Release(Entry entry)
    {
        lock (_gate)
        {
            entry.Leases--;
            if (entry.Leases == 0 && !(_current.TryGetValue((entry.Key.Application, entry.Key.Deployment), out var current) && current == entry.Key && _entries.TryGetValue(entry.Key, out var e) && ReferenceEquals(e, entry)))
                Evict(entry);
        }
    }

    private void Evict(Entry entry)
    {
        if (_entries.TryGetValue(entry.Key, out var e) && ReferenceEquals(e, entry))
            _entries.Remove(entry.Key);
        _ = entry.Loading.ContinueWith(static t =>
        {
            if (!t.IsCompletedSuccessfully)
                return;
            t.Result.Context.Release();
            ReleaseSerializerCaches();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private static readonly Action<Type[]?>? s_clearJsonCaches = FindJsonCacheClearer();

    /// <summary>
    /// System.Text.Json keeps process-wide caches of reflection-emitted accessors keyed by type; an entry for one of an
    /// unloading context's types would keep the context alive. The hook hot reload uses to clear those caches
    /// (<c>JsonSerializerOptionsUpdateHandler.ClearCache</c>) releases them; the caches refill on demand. Unloads are
    /// rare (a code version retiring), so the refill cost is paid rarely.
    /// </summary>
    private static void ReleaseSerializerCaches() => s_clearJsonCaches?.Invoke(null);

    private static Action<Type[]?>? FindJsonCacheClearer()
    {
        var method = typeof(System.Text.Json.JsonSerializer).Assembly
            .GetType("System.Text.Json.JsonSerializerOptionsUpdateHandler")
            ?.GetMethod("ClearCache", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static, [typeof(Type[])]);
        return method?.CreateDelegate<Action<Type[]?>>();
    }

    private LoadedContext Load(ContextKey key, DeploymentDefinition caller, string name)
    {
        var deployment = key.Deployment;
        var env = key.Env;
        var callerAssembly = caller.ImplementationType.Assembly;
        var simpleName = callerAssembly.GetName().Name!;
        string mainPath;
        if (env.Kind == RuntimeEnvKind.Isolated)
        {
            mainPath = callerAssembly.Location;
            if (string.IsNullOrEmpty(mainPath))
            {
                throw new IsolationException(deployment,
                    $"Deployment '{deployment}': RuntimeEnv.Isolated() reloads assembly {simpleName} from its file, but it has none (single-file or in-memory). " +
                    "Use RuntimeEnv.FromDirectory(folder) with the deployment project's build output instead.");
            }
        }
        else
        {
            mainPath = CodeIdentity.DirectoryAssembly(deployment, caller, env);
        }

        var context = new ServeLoadContext(name, mainPath, env.SharedAssemblies, Create(env.BoundaryFormat), env.BoundaryFormat);
        try
        {
            Assembly assembly;
            try
            {
                assembly = context.LoadFromAssemblyPath(mainPath);
            }
            catch (BadImageFormatException e)
            {
                throw new IsolationException(deployment, $"Deployment '{deployment}': {mainPath} is not a .NET assembly: {e.Message}", e);
            }
            CheckDependencies(context, assembly, deployment);
            RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
            var callee = context.FindByHandleType(caller.HandleType.FullName!);
            if (callee is null)
            {
                var typeName = caller.ImplementationType.FullName!;
                var type = assembly.GetType(typeName, throwOnError: false);
                throw new IsolationException(deployment, type is null
                    ? $"Deployment '{deployment}': {mainPath} has no type {typeName}. Build the same deployment class into that folder, or bind the class it declares."
                    : $"Deployment '{deployment}': {typeName} in {mainPath} is not a deployment (no [Deployment] generated code for {caller.HandleType.Name}). " +
                      "Mark the class [Deployment] and build its project with the Serve package (its source generator registers it).");
            }
            var primary = Boundary.Create(deployment, caller, SerializerFor(caller, env.BoundaryFormat), callee, context.Serializer);
            return new LoadedContext(context, callee, primary);
        }
        catch
        {
            context.Release();
            throw;
        }
    }

    private static void CheckDependencies(ServeLoadContext context, Assembly assembly, string deployment)
    {
        foreach (var reference in assembly.GetReferencedAssemblies())
        {
            if (context.IsShared(reference.Name) || context.Resolve(reference) is not null || SharedAssemblies.IsTrusted(reference.Name!))
                continue;
            var deps = Path.Combine(context.Directory, assembly.GetName().Name + ".deps.json");
            throw new IsolationException(deployment,
                $"Deployment '{deployment}': dependency {reference.FullName} of {assembly.GetName().Name}.dll cannot be resolved. Searched: '{context.Directory}' " +
                $"({(File.Exists(deps) ? "with " + Path.GetFileName(deps) : "no .deps.json there")}), the shared frameworks ({string.Join(", ", SharedAssemblies.FrameworkDirectories().Distinct())}) " +
                "and the application's own assemblies. Copy it into the folder (dotnet build or publish the deployment's project there), or reference it from the deployment's project.");
        }
    }

    internal sealed class Entry(ContextKey key, DeploymentDefinition caller, Task<LoadedContext> loading)
    {
        public ContextKey Key { get; } = key;
        public DeploymentDefinition Caller { get; } = caller;
        public Task<LoadedContext> Loading { get; } = loading;
        public int Leases { get; set; }
    }

    internal sealed record LoadedContext(ServeLoadContext Context, DeploymentDefinition Callee, Boundary Primary);

    /// <summary>One replica's use of a pooled context; disposing it gives the context back.</summary>
    internal sealed class ContextLease
    {
        private IsolationPool? _pool;
        private readonly Entry _entry;

        internal ContextLease(IsolationPool pool, Entry entry, LoadedContext loaded)
        {
            _pool = pool;
            _entry = entry;
            Loaded = loaded;
        }

        public LoadedContext Loaded { get; }

        public void Release() => Interlocked.Exchange(ref _pool, null)?.Release(_entry);
    }
}
