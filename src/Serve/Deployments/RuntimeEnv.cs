namespace Serve;

/// <summary>How a deployment's code is loaded: see <see cref="RuntimeEnv"/>.</summary>
public enum RuntimeEnvKind
{
    /// <summary>In the default load context, with the rest of the application (zero-copy calls).</summary>
    Shared,
    /// <summary>The deployment's own assembly loaded again into a collectible context of its own.</summary>
    Isolated,
    /// <summary>The deployment's assembly and its private dependencies loaded from a build output folder.</summary>
    Directory,
}

/// <summary>
/// How values cross an isolated deployment's boundary (<see cref="RuntimeEnv.WithBoundaryFormat"/>): arguments, results
/// and user config whose types the deployment loads separately are written by one side and read by the other.
/// </summary>
public enum BoundaryFormat
{
    /// <summary>The host's serializer: <see cref="ServeOptions.BoundarySerializer"/> (JSON unless changed).</summary>
    HostDefault,
    /// <summary><see cref="Isolation.JsonBoundarySerializer"/>: System.Text.Json over UTF-8.</summary>
    Json,
    /// <summary><see cref="Isolation.MessagePackBoundarySerializer"/>: binary, floats as raw bytes; faster for vectors and numbers.</summary>
    MessagePack,
}

/// <summary>
/// Where a deployment's code runs (Ray Serve's <c>runtime_env</c>): the shared default
/// <see cref="System.Runtime.Loader.AssemblyLoadContext"/> (<see cref="Shared"/>, the default), or a collectible
/// context of its own from the host's pool (<see cref="Isolated"/>, <see cref="FromDirectory"/>).
/// </summary>
/// <remarks>
/// In an isolated context the deployment has its own statics and its own copies of its private dependencies, so two
/// deployments may use two versions of one library at once. Shared assemblies — the .NET and ASP.NET Core shared
/// frameworks, Serve itself, and the contract assemblies named in <see cref="SharedAssemblies"/> — always come from
/// the default context, so their types cross the boundary by reference; other argument and result types are
/// serialized (see <see cref="Isolation.IBoundarySerializer"/>). Values are immutable; two values are equal when
/// they load the same code the same way.
/// </remarks>
public sealed class RuntimeEnv : IEquatable<RuntimeEnv>
{
    private RuntimeEnv(RuntimeEnvKind kind, string? directory, string[] sharedAssemblies, BoundaryFormat boundaryFormat = BoundaryFormat.HostDefault)
    {
        Kind = kind;
        Directory = directory;
        SharedAssemblies = sharedAssemblies;
        BoundaryFormat = boundaryFormat;
    }

    /// <summary>The default: the deployment runs in the default load context, and calls pass every value by reference.</summary>
    public static RuntimeEnv Shared { get; } = new(RuntimeEnvKind.Shared, null, []);

    /// <summary>
    /// Loads the deployment's own assembly (and the application's assemblies it references) again into a collectible
    /// context of its own, with its own statics. All replicas of one code version share that context.
    /// </summary>
    /// <param name="sharedAssemblies">Simple names of contract assemblies whose types must cross by reference.</param>
    public static RuntimeEnv Isolated(params string[] sharedAssemblies) =>
        new(RuntimeEnvKind.Isolated, null, CheckNames(sharedAssemblies));

    /// <summary>
    /// Loads the deployment's implementation assembly and its private dependencies from a build output folder
    /// (resolved with the assembly's <c>.deps.json</c>), e.g. <c>bin/Release/net10.0</c> of the deployment's project.
    /// The folder must contain an assembly with the same simple name as the one that declares the deployment, and
    /// that assembly must declare the same deployment class (with compatible methods).
    /// </summary>
    /// <param name="path">The folder; a relative path is resolved against the current directory now.</param>
    /// <param name="sharedAssemblies">Simple names of contract assemblies whose types must cross by reference.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    public static RuntimeEnv FromDirectory(string path, params string[] sharedAssemblies)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new ArgumentException("RuntimeEnv.FromDirectory needs the path of a build output folder, e.g. \"models/v2/bin/Release/net10.0\".", nameof(path));
        return new(RuntimeEnvKind.Directory, Path.GetFullPath(path), CheckNames(sharedAssemblies));
    }

    /// <summary>How the code is loaded.</summary>
    public RuntimeEnvKind Kind { get; }

    /// <summary>The full path of the folder for <see cref="RuntimeEnvKind.Directory"/>; otherwise <c>null</c>.</summary>
    public string? Directory { get; }

    /// <summary>Simple names of the contract assemblies that always come from the default context.</summary>
    public IReadOnlyList<string> SharedAssemblies { get; }

    /// <summary>True for <see cref="RuntimeEnvKind.Isolated"/> and <see cref="RuntimeEnvKind.Directory"/>.</summary>
    public bool IsIsolated => Kind != RuntimeEnvKind.Shared;

    /// <summary>Returns this environment with more contract assemblies shared by reference.</summary>
    /// <param name="names">Simple assembly names, e.g. <c>"MyCompany.Contracts"</c>.</param>
    public RuntimeEnv WithSharedAssemblies(params string[] names)
    {
        if (Kind == RuntimeEnvKind.Shared)
            throw new InvalidOperationException("RuntimeEnv.Shared already shares every assembly; WithSharedAssemblies applies to Isolated() and FromDirectory(...).");
        return new(Kind, Directory, [.. SharedAssemblies, .. CheckNames(names)], BoundaryFormat);
    }

    /// <summary>
    /// How values of the deployment's own types cross its boundary: <see cref="BoundaryFormat.HostDefault"/> (the
    /// default, <see cref="ServeOptions.BoundarySerializer"/>), <see cref="BoundaryFormat.Json"/> or
    /// <see cref="BoundaryFormat.MessagePack"/>.
    /// </summary>
    public BoundaryFormat BoundaryFormat { get; }

    /// <summary>
    /// Returns this environment with values crossing its boundary in <paramref name="format"/>, e.g.
    /// <c>RuntimeEnv.Isolated().WithBoundaryFormat(BoundaryFormat.MessagePack)</c> for a deployment that takes or returns
    /// vectors in its own record types. Both sides of each boundary into the deployment use that format; other
    /// deployments keep theirs. Config file: <c>runtime_env: { isolated: true, serializer: messagepack }</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">This is <see cref="Shared"/>, which has no boundary.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="format"/> is not a <see cref="Serve.BoundaryFormat"/> value.</exception>
    public RuntimeEnv WithBoundaryFormat(BoundaryFormat format)
    {
        if (Kind == RuntimeEnvKind.Shared)
            throw new InvalidOperationException("RuntimeEnv.Shared passes every value by reference, so it has no boundary format; WithBoundaryFormat applies to Isolated() and FromDirectory(...).");
        if (!Enum.IsDefined(format))
            throw new ArgumentOutOfRangeException(nameof(format), format, $"BoundaryFormat {(int)format} is not defined; use HostDefault, Json or MessagePack.");
        return new(Kind, Directory, [.. SharedAssemblies], format);
    }

    private static string[] CheckNames(string[]? names)
    {
        if (names is null)
            return [];
        foreach (var name in names)
        {
            if (string.IsNullOrWhiteSpace(name) || name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"Shared assembly name \"{name}\" is not a simple assembly name; write e.g. \"MyCompany.Contracts\" (no path, no .dll).", nameof(names));
        }
        return [.. names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    public bool Equals(RuntimeEnv? other) =>
        other is not null
        && Kind == other.Kind
        && string.Equals(Directory, other.Directory, StringComparison.Ordinal)
        && SharedAssemblies.SequenceEqual(other.SharedAssemblies, StringComparer.Ordinal)
        && BoundaryFormat == other.BoundaryFormat;

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as RuntimeEnv);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Kind, Directory, SharedAssemblies.Count, BoundaryFormat);

    /// <summary>A short description: <c>Shared</c>, <c>Isolated</c> or <c>Directory(/path)</c>, with shared contracts and a boundary format other than the host's.</summary>
    public override string ToString()
    {
        var text = Kind switch
        {
            RuntimeEnvKind.Shared => "Shared",
            RuntimeEnvKind.Isolated => "Isolated",
            _ => $"Directory({Directory})",
        };
        if (SharedAssemblies.Count > 0)
            text = $"{text} sharing {string.Join(", ", SharedAssemblies)}";
        return BoundaryFormat == BoundaryFormat.HostDefault ? text : $"{text} over {BoundaryFormat}";
    }
}
