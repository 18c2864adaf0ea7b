namespace Serve.Graphs;

/// <summary>
/// A deployment graph compiled for the driver: its nodes in dependency order, each once, with calls pointing at
/// the driver's handle arguments by index. Plain data with structural equality, so redeploying the same graph is a
/// no-op for the driver.
/// </summary>
internal sealed class GraphPlan : IEquatable<GraphPlan>
{
    private GraphPlan(GraphStep[] steps, Application[] deployments, bool parallel)
    {
        Steps = steps;
        Deployments = deployments;
        Parallel = parallel;
    }

    /// <summary>The nodes in dependency order; the last one is the output.</summary>
    public GraphStep[] Steps { get; }

    /// <summary>The bound deployments the calls go to, each once; they become the driver's handles.</summary>
    public Application[] Deployments { get; }

    /// <summary>True when two calls do not depend on each other, so they may run at the same time.</summary>
    public bool Parallel { get; }

    public int CallCount
    {
        get
        {
            var n = 0;
            foreach (var s in Steps)
                if (s.Kind == GraphStepKind.Call)
                    n++;
            return n;
        }
    }

    /// <summary>Compiles the graph that ends in <paramref name="output"/>.</summary>
    /// <exception cref="ArgumentException">The graph uses two different input nodes, or a node is null.</exception>
    public static GraphPlan Compile(GraphNode output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var index = new Dictionary<GraphNode, int>(ReferenceEqualityComparer.Instance);
        var deployments = new Dictionary<Application, int>(ReferenceEqualityComparer.Instance);
        var steps = new List<GraphStep>();
        GraphNode? input = null;

        // Iterative post-order: a node is added after all its dependencies, each node once.
        var stack = new Stack<(GraphNode Node, bool Expanded)>();
        stack.Push((output, false));
        while (stack.Count > 0)
        {
            var (node, expanded) = stack.Pop();
            if (index.ContainsKey(node))
                continue;
            if (!expanded)
            {
                stack.Push((node, true));
                var dependencies = node.Dependencies;
                for (var i = dependencies.Length - 1; i >= 0; i--)
                {
                    if (dependencies[i] is not { } dependency)
                        throw new ArgumentException($"Graph node {node} has a null argument at position {i}; pass a graph node (an InputNode, a bound call or a constant value).");
                    if (!index.ContainsKey(dependency))
                        stack.Push((dependency, false));
                }
                continue;
            }
            var args = new int[node.Dependencies.Length];
            for (var i = 0; i < args.Length; i++)
                args[i] = index[node.Dependencies[i]];
            GraphStep step;
            switch (node)
            {
                case ICallNode call:
                    if (!deployments.TryGetValue(call.Target, out var target))
                    {
                        target = deployments.Count;
                        deployments.Add(call.Target, target);
                    }
                    step = new GraphStep(GraphStepKind.Call, args, target, call.MethodId, call.Method, null, null, call.Target.DeploymentName);
                    break;
                case ISelectNode select:
                    step = new GraphStep(GraphStepKind.Select, args, -1, 0, null, null, select, null);
                    break;
                case IConstantNode constant:
                    step = new GraphStep(GraphStepKind.Constant, args, -1, 0, null, constant.BoxedValue, null, null);
                    break;
                default:
                    if (input is not null && !ReferenceEquals(input, node))
                        throw new ArgumentException($"The graph uses two input nodes ({input} and {node}); a graph has one input. Create one InputNode and pass it everywhere (use Select on it to take parts of a composite input).");
                    input = node;
                    step = new GraphStep(GraphStepKind.Input, args, -1, 0, null, null, null, null);
                    break;
            }
            index.Add(node, steps.Count);
            steps.Add(step);
        }

        var stepArray = steps.ToArray();
        var ordered = new Application[deployments.Count];
        foreach (var (app, i) in deployments)
            ordered[i] = app;
        return new GraphPlan(stepArray, ordered, HasIndependentCalls(stepArray));
    }

    // Two calls are independent when neither is an ancestor of the other.
    private static bool HasIndependentCalls(GraphStep[] steps)
    {
        var ancestors = new HashSet<int>[steps.Length];
        for (var i = 0; i < steps.Length; i++)
        {
            var set = new HashSet<int>();
            foreach (var a in steps[i].Arguments)
            {
                set.Add(a);
                set.UnionWith(ancestors[a]);
            }
            ancestors[i] = set;
        }
        for (var i = 0; i < steps.Length; i++)
        {
            if (steps[i].Kind != GraphStepKind.Call)
                continue;
            for (var j = i + 1; j < steps.Length; j++)
            {
                if (steps[j].Kind == GraphStepKind.Call && !ancestors[j].Contains(i))
                    return true;
            }
        }
        return false;
    }

    public bool Equals(GraphPlan? other)
    {
        if (other is null || other.Steps.Length != Steps.Length)
            return false;
        for (var i = 0; i < Steps.Length; i++)
        {
            if (!Steps[i].SameAs(other.Steps[i]))
                return false;
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as GraphPlan);

    public override int GetHashCode() => HashCode.Combine(Steps.Length, Steps.Length > 0 ? Steps[^1].Kind : default);

    public override string ToString() => $"graph of {Steps.Length} node(s), {CallCount} call(s)";
}

internal enum GraphStepKind
{
    Input,
    Constant,
    Select,
    Call,
}

/// <summary>One compiled node: what it is and the steps whose values it takes.</summary>
internal sealed record GraphStep(
    GraphStepKind Kind,
    int[] Arguments,
    int Target,
    int MethodId,
    string? Method,
    object? Constant,
    ISelectNode? Select,
    string? DeploymentName)
{
    public bool SameAs(GraphStep other) =>
        Kind == other.Kind
        && Arguments.AsSpan().SequenceEqual(other.Arguments)
        && Target == other.Target
        && MethodId == other.MethodId
        && Equals(Constant, other.Constant)
        && ReferenceEquals(Select?.Selector, other.Select?.Selector);
}
