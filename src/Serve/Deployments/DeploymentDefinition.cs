using System.Collections.Concurrent;
using System.ComponentModel;
using Serve.CodeGeneration;

namespace Serve;

/// <summary>
/// What the generator knows about one <c>[Deployment]</c> class or function: its name, handle type, default
/// options, factories and the switch-based invoker. Created by generated code, one instance per deployment class.
/// </summary>
public sealed class DeploymentDefinition
{
    /// <summary>The default deployment name (the class or function name, or the attribute's <c>Name</c>).</summary>
    public required string Name { get; init; }

    /// <summary>The class that implements the deployment (the static class for a function deployment).</summary>
    public required Type ImplementationType { get; init; }

    /// <summary>The generated handle type.</summary>
    public required Type HandleType { get; init; }

    /// <summary>The options from the <see cref="DeploymentAttribute"/>.</summary>
    public required DeploymentOptions DefaultOptions { get; init; }

    /// <summary>Creates a handle bound to a running deployment.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public required Func<HandleTarget, DeploymentHandle> CreateHandle { get; init; }

    /// <summary>Creates one replica instance from bound arguments and injected services.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public required Func<DeploymentActivation, object> CreateInstance { get; init; }

    /// <summary>The switch-based invoker.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public required IDeploymentInvoker Invoker { get; init; }

    /// <summary>The handle methods, in declaration order.</summary>
    public required IReadOnlyList<DeploymentMethod> Methods { get; init; }

    /// <summary>The HTTP endpoints (<c>[HttpGet]</c>-style methods); empty when the class declares none.</summary>
    public IReadOnlyList<HttpEndpoint> HttpEndpoints { get; init; } = [];

    /// <summary>The <c>TConfig</c> of <see cref="IReconfigurable{TConfig}"/>, or <c>null</c>.</summary>
    public Type? UserConfigType { get; init; }

    /// <summary>Calls <see cref="IReconfigurable{TConfig}.ReconfigureAsync"/> on an instance, converting the config.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public Func<object, object?, CancellationToken, ValueTask>? Reconfigure { get; init; }

    /// <summary>The loaded models of an instance of a <see cref="MultiplexedAttribute"/> deployment; <c>null</c> otherwise.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public Func<object, Multiplexing.IMultiplexedModels>? Multiplexed { get; init; }

    /// <summary>The batch queues of an instance, one per <see cref="BatchAttribute"/> method; <c>null</c> when the class has none.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public Func<object, IReadOnlyList<Batching.BatchQueue>>? BatchQueues { get; init; }

    /// <summary>True for a <c>[Deployment]</c> static method (a function deployment).</summary>
    public bool IsFunction { get; init; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({ImplementationType.FullName})";
}

/// <summary>
/// The deployments of every loaded assembly that contains them, registered by the generated manifest (a module
/// initializer) so the runtime never scans assemblies.
/// </summary>
public static class DeploymentRegistry
{
    // Keyed by handle type: unique per deployment, even for several function deployments of one static class.
    private static readonly ConcurrentDictionary<Type, DeploymentDefinition> s_byHandle = new();

    /// <summary>Called by the generated manifest; not for user code.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public static void Register(DeploymentDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        // A copy loaded into an isolated context registers with that context, never here: the global registry must
        // not keep a collectible context alive, and the application's own definitions must stay the ones found.
        if (System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(definition.ImplementationType.Assembly) is Isolation.ServeLoadContext context)
        {
            context.Register(definition);
            return;
        }
        s_byHandle[definition.HandleType] = definition;
    }

    /// <summary>All registered deployment definitions, ordered by implementation type name, then deployment name.</summary>
    public static IReadOnlyList<DeploymentDefinition> All =>
        s_byHandle.Values.OrderBy(d => d.ImplementationType.FullName, StringComparer.Ordinal).ThenBy(d => d.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Finds the definition of a deployment class or handle type (a function deployment is found by its handle type).</summary>
    public static DeploymentDefinition? Find(Type type)
    {
        if (s_byHandle.TryGetValue(type, out var byHandle))
            return byHandle;
        foreach (var d in s_byHandle.Values)
        {
            if (!d.IsFunction && d.ImplementationType == type)
                return d;
        }
        return null;
    }

    /// <summary>Finds registered definitions by deployment name or implementation type name.</summary>
    public static IReadOnlyList<DeploymentDefinition> Find(string name) =>
        All.Where(d => d.Name == name || (!d.IsFunction && (d.ImplementationType.FullName == name || d.ImplementationType.Name == name))).ToArray();
}
