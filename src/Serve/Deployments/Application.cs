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

    /// <summary>A copy of this node with other arguments and options; same definition, constructor and handle type.</summary>
    private protected abstract Application With(object?[] arguments, DeploymentOptions options);

    /// <summary>
    /// Returns a new graph in which every node's options are <paramref name="options"/>(node) (return the node's own
    /// options to keep them); nodes shared in this graph stay shared. This graph is unchanged.
    /// </summary>
    internal Application RewriteOptions(Func<Application, DeploymentOptions> options) =>
        RewriteOptions(options, new Dictionary<Application, Application>(ReferenceEqualityComparer.Instance));

    private Application RewriteOptions(Func<Application, DeploymentOptions> options, Dictionary<Application, Application> done)
    {
        if (done.TryGetValue(this, out var existing))
            return existing;
        var arguments = new object?[_arguments.Length];
        for (var i = 0; i < arguments.Length; i++)
            arguments[i] = _arguments[i] is Application child ? child.RewriteOptions(options, done) : _arguments[i];
        var rewritten = With(arguments, options(this));
        done[this] = rewritten;
        return rewritten;
    }

    /// <summary>Every node of the graph rooted here, each once, this one first.</summary>
    internal IEnumerable<Application> Nodes()
    {
        var seen = new HashSet<Application>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Application>();
        stack.Push(this);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!seen.Add(node))
                continue;
            yield return node;
            for (var i = node._arguments.Length - 1; i >= 0; i--)
                if (node._arguments[i] is Application child)
                    stack.Push(child);
        }
    }
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

    private protected override Application With(object?[] arguments, DeploymentOptions options) =>
        new Application<THandle>(Definition, ConstructorIndex, arguments, options);

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
