using Serve.Graphs;

namespace Serve;

/// <summary>
/// A node of a deployment graph (Ray Serve's DAG nodes), untyped. Build graphs with <see cref="InputNode{T}"/>,
/// the generated graph builders (<c>Model.Bind(2).Predict(node)</c>, <c>PreprocessDeployment.Bind(node)</c>) and
/// <see cref="GraphNode{TInput, TResult}.Select{TNext}"/>; run one with <see cref="DagDriver.Bind{TInput, TResult}"/>.
/// Nodes are immutable and may be shared: a node used twice is evaluated once per request.
/// </summary>
public abstract class GraphNode
{
    private protected GraphNode()
    {
    }

    /// <summary>The type of the value this node produces.</summary>
    public abstract Type ResultType { get; }

    internal abstract GraphNode[] Dependencies { get; }

    /// <summary>What this node is, for error messages: <c>input</c>, <c>constant 3</c>, <c>Model.Predict(...)</c>.</summary>
    public abstract override string ToString();
}

/// <summary>
/// A node of a deployment graph whose graph input is a <typeparamref name="TInput"/> and whose value is a
/// <typeparamref name="TResult"/>. The input type travels with every node, so a graph that mixes two input types
/// does not compile, and <see cref="DagDriver.Bind{TInput, TResult}"/> knows its handle's types.
/// </summary>
/// <typeparam name="TInput">The type of the graph's input (its <see cref="InputNode{T}"/>).</typeparam>
/// <typeparam name="TResult">The type of the value this node produces.</typeparam>
public abstract class GraphNode<TInput, TResult> : GraphNode
{
    private protected GraphNode()
    {
    }

    /// <inheritdoc />
    public sealed override Type ResultType => typeof(TResult);

    /// <summary>
    /// A constant value where a graph builder expects a node: <c>model.Combine(node, 3)</c> passes 3 on every
    /// request.
    /// </summary>
    public static implicit operator GraphNode<TInput, TResult>(TResult value) => new ConstantNode<TInput, TResult>(value);

    /// <summary>
    /// A node whose value is <paramref name="selector"/> applied to this node's value, computed in the driver
    /// (not a deployment call): use it to pick a field of the input (Ray's <c>input[0]</c> / <c>input.key</c>) or to
    /// adapt one deployment's result to the next one's parameter.
    /// </summary>
    /// <param name="selector">A cheap, pure function; it runs on the driver replica for every request.</param>
    public GraphNode<TInput, TNext> Select<TNext>(Func<TResult, TNext> selector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        return new SelectNode<TInput, TResult, TNext>(this, selector);
    }
}

/// <summary>
/// The input of a deployment graph (Ray Serve's <c>InputNode</c>): each request's value. Create one per graph and
/// pass it to the graph builders; use <see cref="GraphNode{TInput, TResult}.Select{TNext}"/> to take parts of it.
/// </summary>
/// <example><code>
/// var input = new InputNode&lt;int&gt;();
/// var output = Model.Bind(increment: 2).Predict(PreprocessDeployment.Bind(input));
/// var handle = await serve.RunAsync(DagDriver.Bind(output));
/// int four = await handle.CallAsync(1);
/// </code></example>
/// <typeparam name="T">The type of the graph's input.</typeparam>
public sealed class InputNode<T> : GraphNode<T, T>
{
    internal override GraphNode[] Dependencies => [];

    /// <inheritdoc />
    public override string ToString() => $"InputNode<{typeof(T).Name}>";
}
