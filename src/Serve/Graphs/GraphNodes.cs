namespace Serve.Graphs;

/// <summary>A value fixed when the graph is built.</summary>
internal sealed class ConstantNode<TInput, TResult>(TResult value) : GraphNode<TInput, TResult>, IConstantNode
{
    public TResult Value { get; } = value;

    public object? BoxedValue => Value;

    internal override GraphNode[] Dependencies => [];

    public override string ToString() => $"constant {Value}";
}

/// <summary>A function of another node's value, computed on the driver replica.</summary>
internal sealed class SelectNode<TInput, TSource, TResult>(GraphNode<TInput, TSource> source, Func<TSource, TResult> selector)
    : GraphNode<TInput, TResult>, ISelectNode
{
    internal override GraphNode[] Dependencies { get; } = [source];

    public Delegate Selector => selector;

    public object? Apply(object? value) => selector((TSource)value!);

    public override string ToString() => $"Select({source})";
}

internal interface IConstantNode
{
    object? BoxedValue { get; }
}

internal interface ISelectNode
{
    Delegate Selector { get; }

    object? Apply(object? value);
}

/// <summary>A call of one method of a bound deployment with the values of other nodes, made through its handle.</summary>
internal sealed class CallNode<TInput, TResult>(Application target, int methodId, string method, GraphNode[] arguments)
    : GraphNode<TInput, TResult>, ICallNode
{
    public Application Target { get; } = target;

    public int MethodId { get; } = methodId;

    public string Method { get; } = method;

    internal override GraphNode[] Dependencies { get; } = arguments;

    public override string ToString() => $"{Target.DeploymentName}.{Method}(...)";
}

internal interface ICallNode
{
    Application Target { get; }
    int MethodId { get; }
    string Method { get; }
}
