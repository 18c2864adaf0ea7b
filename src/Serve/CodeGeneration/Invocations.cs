using System.ComponentModel;

namespace Serve.CodeGeneration;

// The contracts between generated code and the runtime. User code never implements these; they are public only
// because the generated code in the user's assembly uses them.

/// <summary>A generated argument struct for one handle method returning a value. Not for user code.</summary>
/// <typeparam name="TResult">The method's result type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IInvocation<TResult>
{
    /// <summary>The stable method id (a hash of the method signature).</summary>
    int MethodId { get; }

    /// <summary>
    /// The arguments, boxed, one per handle-method parameter (cancellation token excluded): used only when the call
    /// crosses an isolation boundary, where the callee's copy of this struct is a different type.
    /// </summary>
    object?[] GetArguments();

    /// <summary>Calls the user method on <paramref name="instance"/> directly (no reflection).</summary>
    ValueTask<TResult> InvokeAsync(object instance, CancellationToken cancellationToken);
}

/// <summary>A generated argument struct for one handle method returning no value. Not for user code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IVoidInvocation
{
    /// <summary>The stable method id (a hash of the method signature).</summary>
    int MethodId { get; }

    /// <summary>
    /// The arguments, boxed, one per handle-method parameter (cancellation token excluded): used only when the call
    /// crosses an isolation boundary, where the callee's copy of this struct is a different type.
    /// </summary>
    object?[] GetArguments();

    /// <summary>Calls the user method on <paramref name="instance"/> directly (no reflection).</summary>
    ValueTask InvokeAsync(object instance, CancellationToken cancellationToken);
}

/// <summary>A generated argument struct for one handle method returning <see cref="IAsyncEnumerable{T}"/>. Not for user code.</summary>
/// <typeparam name="TItem">The stream's item type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IStreamInvocation<TItem>
{
    /// <summary>The stable method id (a hash of the method signature).</summary>
    int MethodId { get; }

    /// <summary>
    /// The arguments, boxed, one per handle-method parameter (cancellation token excluded): used only when the call
    /// crosses an isolation boundary, where the callee's copy of this struct is a different type.
    /// </summary>
    object?[] GetArguments();

    /// <summary>Calls the user method on <paramref name="instance"/> directly (no reflection).</summary>
    IAsyncEnumerable<TItem> Invoke(object instance, CancellationToken cancellationToken);
}

/// <summary>
/// The generated switch-based invoker of one deployment: dispatches a method id with boxed arguments to the
/// instance. Used by untyped handles and (later) by calls that cross an isolation or process boundary.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IDeploymentInvoker
{
    /// <summary>
    /// Calls method <paramref name="methodId"/> on <paramref name="instance"/> with <paramref name="arguments"/>
    /// (one per handle-method parameter, cancellation token excluded). The result of a void method is <c>null</c>;
    /// a stream method returns its <see cref="IAsyncEnumerable{T}"/>.
    /// </summary>
    ValueTask<object?> InvokeAsync(object instance, int methodId, object?[] arguments, CancellationToken cancellationToken);
}

/// <summary>How a handle method returns.</summary>
public enum DeploymentMethodKind
{
    /// <summary><c>T</c>, <c>Task&lt;T&gt;</c> or <c>ValueTask&lt;T&gt;</c>: the handle returns <c>ValueTask&lt;T&gt;</c>.</summary>
    Value,
    /// <summary><c>void</c>, <c>Task</c> or <c>ValueTask</c>: the handle returns <c>ValueTask</c>.</summary>
    Void,
    /// <summary><c>IAsyncEnumerable&lt;T&gt;</c>: the handle returns a stream.</summary>
    Stream,
}

/// <summary>
/// Describes one handle method of a deployment. Generated code sets it with named properties (never a positional
/// constructor), so a newer Serve can add properties without breaking assemblies compiled against an older one.
/// </summary>
public sealed record DeploymentMethod
{
    /// <summary>The user method's name, e.g. <c>Shout</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The handle method's name, e.g. <c>ShoutAsync</c>.</summary>
    public required string HandleName { get; init; }

    /// <summary>The stable method id.</summary>
    public required int MethodId { get; init; }

    /// <summary>True for the call method (<c>Call</c>/<c>CallAsync</c>).</summary>
    public bool IsCall { get; init; }

    /// <summary>How the method returns.</summary>
    public required DeploymentMethodKind Kind { get; init; }

    /// <summary>The value or item type; <c>null</c> for void methods.</summary>
    public Type? ResultType { get; init; }

    /// <summary>The parameter names, cancellation token excluded.</summary>
    public required string[] ParameterNames { get; init; }

    /// <summary>The parameter types, cancellation token excluded.</summary>
    public required Type[] ParameterTypes { get; init; }

    /// <summary>
    /// The <see cref="BatchAttribute.MaxBatchSize"/> of a <c>[Batch]</c> method as compiled (the replica may change it at
    /// run time), or <c>null</c> for a method that is not batched.
    /// </summary>
    public int? MaxBatchSize { get; init; }
}
