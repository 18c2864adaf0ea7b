using System.ComponentModel;
using Serve.CodeGeneration;
using Serve.Graphs;

namespace Serve;

/// <summary>
/// Turns a deployment graph into an application (Ray Serve's <c>DAGDriver</c>): a deployment named
/// <c>DagDriver</c> whose call method takes the graph's input and returns its output, and which deploys every
/// deployment the graph calls. As an application's ingress it serves the graph over HTTP too.
/// </summary>
/// <example><code>
/// var input = new InputNode&lt;int&gt;();
/// var output = Model.Bind(increment: 2).Predict(PreprocessDeployment.Bind(input));
/// DagDriverHandle&lt;int, int&gt; graph = await serve.RunAsync(DagDriver.Bind(output));
/// int four = await graph.CallAsync(1);
/// </code></example>
public static class DagDriver
{
    /// <summary>The default deployment name of a driver.</summary>
    public const string DefaultName = "DagDriver";

    /// <summary>
    /// The default <see cref="DeploymentOptions.MaxOngoingRequests"/> of a driver: it only waits for the deployments
    /// it calls (whose own limits apply), so it admits many requests at once (Ray's DAGDriver default too).
    /// </summary>
    public const int DefaultMaxOngoingRequests = 100;

    /// <summary>
    /// Binds a driver for the graph that ends in <paramref name="output"/>; deploy it with
    /// <see cref="IServeClient.RunAsync{THandle}"/>. Each request evaluates the graph once: every node once, calls as
    /// soon as their arguments are ready (independent branches concurrently), each through the called deployment's
    /// router.
    /// </summary>
    /// <typeparam name="TInput">The graph's input type (of its <see cref="InputNode{T}"/>).</typeparam>
    /// <typeparam name="TResult">The graph's output type.</typeparam>
    /// <param name="output">The node whose value is the graph's result.</param>
    /// <exception cref="ArgumentException">The graph uses two different <see cref="InputNode{T}"/>s, or a node is null.</exception>
    public static Application<DagDriverHandle<TInput, TResult>> Bind<TInput, TResult>(GraphNode<TInput, TResult> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var plan = GraphPlan.Compile(output);
        var arguments = new object?[plan.Deployments.Length + 1];
        arguments[0] = plan;
        for (var i = 0; i < plan.Deployments.Length; i++)
            arguments[i + 1] = plan.Deployments[i];
        return new Application<DagDriverHandle<TInput, TResult>>(DagDriverDefinition<TInput, TResult>.Instance, 0, arguments);
    }
}

/// <summary>
/// The handle of a <see cref="DagDriver"/> application: <see cref="CallAsync"/> runs the graph for one input.
/// </summary>
/// <typeparam name="TInput">The graph's input type.</typeparam>
/// <typeparam name="TResult">The graph's output type.</typeparam>
public sealed class DagDriverHandle<TInput, TResult> : DeploymentHandle
{
    /// <summary>Created by the Serve host; not for user code.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public DagDriverHandle(HandleTarget target) : base(target)
    {
    }

    /// <summary>Runs the graph for <paramref name="input"/> on a driver replica and returns its output.</summary>
    /// <param name="input">The value of the graph's <see cref="InputNode{T}"/>.</param>
    /// <param name="cancellationToken">Cancels the wait for a driver slot and every call of the graph still running.</param>
    public ValueTask<TResult> CallAsync(TInput input, CancellationToken cancellationToken = default) =>
        InvokeAsync<DagDriverCall<TInput, TResult>, TResult>(new DagDriverCall<TInput, TResult>(input), cancellationToken);
}

/// <summary>One driver replica: the compiled graph and a handle per deployment it calls.</summary>
internal sealed class DagDriverReplica<TInput, TResult>(GraphPlan plan, DeploymentHandle[] handles)
{
    public GraphPlan Plan => plan;

    public async ValueTask<TResult> RunAsync(TInput input, CancellationToken cancellationToken) =>
        (TResult)(await GraphExecutor.RunAsync(plan, handles, input, cancellationToken).ConfigureAwait(false))!;
}

internal readonly struct DagDriverCall<TInput, TResult>(TInput input) : IInvocation<TResult>
{
    public const int Id = 0x0DA6_0001;

    public int MethodId => Id;

    public object?[] GetArguments() => [input];

    public ValueTask<TResult> InvokeAsync(object instance, CancellationToken cancellationToken) =>
        ((DagDriverReplica<TInput, TResult>)instance).RunAsync(input, cancellationToken);
}

/// <summary>The hand-written deployment definition of a driver for one pair of graph types.</summary>
internal static class DagDriverDefinition<TInput, TResult>
{
    public static readonly DeploymentDefinition Instance = new()
    {
        Name = DagDriver.DefaultName,
        ImplementationType = typeof(DagDriverReplica<TInput, TResult>),
        HandleType = typeof(DagDriverHandle<TInput, TResult>),
        DefaultOptions = new DeploymentOptions { Name = DagDriver.DefaultName, MaxOngoingRequests = DagDriver.DefaultMaxOngoingRequests },
        CreateHandle = static target => new DagDriverHandle<TInput, TResult>(target),
        CreateInstance = Create,
        Invoker = new Invoker(),
        Methods =
        [
            new DeploymentMethod
            {
                Name = "Call",
                HandleName = "CallAsync",
                MethodId = DagDriverCall<TInput, TResult>.Id,
                IsCall = true,
                Kind = DeploymentMethodKind.Value,
                ResultType = typeof(TResult),
                ParameterNames = ["input"],
                ParameterTypes = [typeof(TInput)],
            },
        ],
    };

    private static object Create(DeploymentActivation activation)
    {
        var plan = activation.GetArgument<GraphPlan>(0, "graph");
        var handles = new DeploymentHandle[plan.Deployments.Length];
        for (var i = 0; i < handles.Length; i++)
            handles[i] = activation.GetArgument<DeploymentHandle>(i + 1, plan.Deployments[i].DeploymentName);
        return new DagDriverReplica<TInput, TResult>(plan, handles);
    }

    private sealed class Invoker : IDeploymentInvoker
    {
        public ValueTask<object?> InvokeAsync(object instance, int methodId, object?[] arguments, CancellationToken cancellationToken)
        {
            if (methodId != DagDriverCall<TInput, TResult>.Id)
                throw InvokerHelpers.UnknownMethod(DagDriver.DefaultName, methodId);
            InvokerHelpers.ExpectArguments(arguments, 1, DagDriver.DefaultName);
            var input = InvokerHelpers.Argument<TInput>(arguments, 0, DagDriver.DefaultName, "input");
            return InvokerHelpers.Box(((DagDriverReplica<TInput, TResult>)instance).RunAsync(input, cancellationToken));
        }
    }
}
