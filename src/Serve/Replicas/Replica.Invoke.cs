using System.Runtime.CompilerServices;
using Serve.CodeGeneration;
using Serve.Isolation;
using Serve.Scheduling;

namespace Serve.Replicas;

// How a local replica runs a call it admitted: the user method directly when the caller was built from the same
// definition as the instance, else across the isolated context's boundary; either way under the replica's CPU limit
// (NumCpus), inline on the caller's thread when a CPU slot is free, else from the limiter's queue. offCaller: never on
// the caller's thread (a call raced against a deadline), one hop to the thread pool when the replica has no CPU limit.
internal sealed partial class Replica
{
    /// <inheritdoc cref="IReplica.InvokeAsync{TArgs, TResult}"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<TResult> InvokeAsync<TArgs, TResult>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        var instance = Instance;
        if (ReferenceEquals(_definition, caller) && !offCaller)
            return Cpu is { } cpu ? cpu.Invoke<TArgs, TResult>(arguments, instance, cancellationToken) : arguments.InvokeAsync(instance, cancellationToken);
        return InvokeElsewhere<TArgs, TResult>(caller, arguments, instance, offCaller, cancellationToken);
    }

    // Out of line: the tuples and lambdas of the boundary and off-caller paths cost the direct path nothing.
    private ValueTask<TResult> InvokeElsewhere<TArgs, TResult>(DeploymentDefinition caller, TArgs arguments, object instance, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        if (ReferenceEquals(_definition, caller))
            return (Cpu ?? CpuLimiter.Unlimited).Queue((Arguments: arguments, Instance: instance, Token: cancellationToken), static s => s.Arguments.InvokeAsync(s.Instance, s.Token), cancellationToken);
        var state = (Boundary: GetBoundary(caller), Arguments: arguments, Instance: instance, Token: cancellationToken);
        if (offCaller)
            return (Cpu ?? CpuLimiter.Unlimited).Queue(state, static s => s.Boundary.InvokeAsync<TArgs, TResult>(s.Arguments, s.Instance, s.Token), cancellationToken);
        return Cpu is { } limited
            ? limited.Run(state, static s => s.Boundary.InvokeAsync<TArgs, TResult>(s.Arguments, s.Instance, s.Token), cancellationToken)
            : state.Boundary.InvokeAsync<TArgs, TResult>(arguments, instance, cancellationToken);
    }

    /// <inheritdoc cref="IReplica.InvokeVoidAsync{TArgs}"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask InvokeVoidAsync<TArgs>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        var instance = Instance;
        if (ReferenceEquals(_definition, caller) && !offCaller)
            return Cpu is { } cpu ? cpu.InvokeVoid(arguments, instance, cancellationToken) : arguments.InvokeAsync(instance, cancellationToken);
        return InvokeVoidElsewhere(caller, arguments, instance, offCaller, cancellationToken);
    }

    private ValueTask InvokeVoidElsewhere<TArgs>(DeploymentDefinition caller, TArgs arguments, object instance, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (ReferenceEquals(_definition, caller))
            return (Cpu ?? CpuLimiter.Unlimited).QueueVoid((Arguments: arguments, Instance: instance, Token: cancellationToken), static s => s.Arguments.InvokeAsync(s.Instance, s.Token), cancellationToken);
        var state = (Boundary: GetBoundary(caller), Arguments: arguments, Instance: instance, Token: cancellationToken);
        if (offCaller)
            return (Cpu ?? CpuLimiter.Unlimited).QueueVoid(state, static s => s.Boundary.InvokeVoidAsync(s.Arguments, s.Instance, s.Token), cancellationToken);
        return Cpu is { } limited
            ? limited.RunVoid(state, static s => s.Boundary.InvokeVoidAsync(s.Arguments, s.Instance, s.Token), cancellationToken)
            : state.Boundary.InvokeVoidAsync(arguments, instance, cancellationToken);
    }

    /// <inheritdoc cref="IReplica.InvokeBoxedAsync"/>
    public ValueTask<object?> InvokeBoxedAsync(DeploymentDefinition caller, int methodId, object?[] arguments, bool offCaller, CancellationToken cancellationToken)
    {
        var state = (Replica: this, Caller: caller, Instance: Instance, MethodId: methodId, Arguments: arguments, Token: cancellationToken);
        if (offCaller)
            return (Cpu ?? CpuLimiter.Unlimited).Queue(state, static s => s.Replica.InvokeBoxedCore(s.Caller, s.Instance, s.MethodId, s.Arguments, s.Token), cancellationToken);
        return Cpu is { } cpu
            ? cpu.Run(state, static s => s.Replica.InvokeBoxedCore(s.Caller, s.Instance, s.MethodId, s.Arguments, s.Token), cancellationToken)
            : InvokeBoxedCore(caller, state.Instance, methodId, arguments, cancellationToken);
    }

    private ValueTask<object?> InvokeBoxedCore(DeploymentDefinition caller, object instance, int methodId, object?[] arguments, CancellationToken cancellationToken) =>
        ReferenceEquals(_definition, caller)
            ? caller.Invoker.InvokeAsync(instance, methodId, arguments, cancellationToken)
            : GetBoundary(caller).InvokeBoxedAsync(instance, methodId, arguments, cancellationToken);

    /// <inheritdoc cref="IReplica.InvokeStreamAsync{TArgs, TItem}"/>
    public ValueTask<IAsyncEnumerable<TItem>> InvokeStreamAsync<TArgs, TItem>(DeploymentDefinition caller, TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IStreamInvocation<TItem> =>
        new(ReferenceEquals(_definition, caller)
            ? arguments.Invoke(Instance, cancellationToken)
            : GetBoundary(caller).InvokeStream<TArgs, TItem>(arguments, Instance, cancellationToken));

    /// <inheritdoc cref="IReplica.InvokeBoxedStreamAsync"/>
    public async ValueTask<IAsyncEnumerable<object?>> InvokeBoxedStreamAsync(DeploymentDefinition caller, int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var boxed = await InvokeBoxedCore(caller, Instance, methodId, arguments, cancellationToken).ConfigureAwait(false);
        return boxed as IAsyncEnumerable<object?> ?? throw new InvalidOperationException(
            $"Deployment '{Context.DeploymentName}': the invoker did not return a stream for a stream method; rebuild the deployment with the current Serve generator.");
    }
}
