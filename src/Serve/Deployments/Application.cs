using System.ComponentModel;
using Serve.CodeGeneration;

namespace Serve;

/// <summary>
/// A bound deployment: a deployment definition plus its constructor arguments and options, the node of an
/// application graph. Arguments that are themselves <see cref="Application"/>s are deployed too and arrive in
/// the constructor as handles. Immutable; build it with the generated <c>X.Bind(...)</c>.
/// </summary>
public abstract class Application
{
    private readonly object?[] _arguments;
    private readonly DeploymentOptions _options;

    private protected Application(DeploymentDefinition definition, int constructorIndex, object?[] arguments, DeploymentOptions options)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(arguments);
        Definition = definition;
        ConstructorIndex = constructorIndex;
        _arguments = arguments;
        _options = options;
    }

    /// <summary>The generated description of the deployment's class.</summary>
    public DeploymentDefinition Definition { get; }

    /// <summary>The deployment name (<see cref="DeploymentOptions.Name"/>).</summary>
    public string DeploymentName => _options.Name;

    /// <summary>Which public constructor (in declaration order) the arguments are for.</summary>
    public int ConstructorIndex { get; }

    /// <summary>The bound constructor arguments; nested <see cref="Application"/>s are deployments this one calls.</summary>
    public IReadOnlyList<object?> Arguments => _arguments;

    /// <summary>Returns a copy of the effective options (attribute defaults plus <c>WithOptions</c> overrides).</summary>
    public DeploymentOptions GetOptions() => _options.Clone();

    internal DeploymentOptions OptionsNoCopy => _options;

    private protected object?[] ArgumentArray => _arguments;
}

/// <summary>
/// A bound deployment whose handle type is <typeparamref name="THandle"/>: what <c>X.Bind(...)</c> returns and
/// <see cref="IServeClient.RunAsync{THandle}"/> deploys.
/// </summary>
/// <typeparam name="THandle">The generated handle type of the deployment.</typeparam>
public sealed class Application<THandle> : Application where THandle : DeploymentHandle
{
    /// <summary>Used by generated <c>Bind</c> methods; not for user code.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public Application(DeploymentDefinition definition, int constructorIndex, object?[] arguments)
        : base(definition, constructorIndex, arguments, definition.DefaultOptions.Clone())
    {
        if (definition.HandleType != typeof(THandle))
            throw new ArgumentException($"Deployment '{definition.Name}' has handle type {definition.HandleType}, not {typeof(THandle)}.", nameof(definition));
    }

    private Application(DeploymentDefinition definition, int constructorIndex, object?[] arguments, DeploymentOptions options)
        : base(definition, constructorIndex, arguments, options)
    {
    }

    /// <summary>
    /// Returns a new application with options changed by <paramref name="configure"/> (Ray's <c>.options(...)</c>);
    /// this one is unchanged.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the message names the deployment, option and value.</exception>
    public Application<THandle> WithOptions(Action<DeploymentOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = OptionsNoCopy.Clone();
        configure(options);
        options.Validate(options.Name is { Length: > 0 } n ? n : DeploymentName);
        return new Application<THandle>(Definition, ConstructorIndex, ArgumentArray, options);
    }
}
