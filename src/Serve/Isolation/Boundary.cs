using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using Serve.CodeGeneration;

namespace Serve.Isolation;

/// <summary>
/// Calls from code built against one copy of a deployment (the caller's definition) into a replica built from
/// another copy (the callee's definition, in another load context). Values of types both sides share pass by
/// reference; others are serialized by the side that owns them and read back by the other; exceptions of isolated
/// types become <see cref="BoundaryException"/>. Plans are made once per pair of definitions and checked up front,
/// so a type that cannot cross fails the replica start, not a call.
/// </summary>
internal sealed class Boundary
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    private readonly DeploymentDefinition _callee;
    private readonly IBoundarySerializer _callerSerializer;
    private readonly IBoundarySerializer _calleeSerializer;
    private readonly MethodPlan[] _plans; // a handful per deployment: a linear scan beats hashing
    private readonly string _deployment;

    private Boundary(string deployment, DeploymentDefinition callee, IBoundarySerializer callerSerializer, IBoundarySerializer calleeSerializer, MethodPlan[] plans)
    {
        _deployment = deployment;
        _callee = callee;
        _callerSerializer = callerSerializer;
        _calleeSerializer = calleeSerializer;
        _plans = plans;
    }

    /// <summary>Plans every caller method against the callee; throws <see cref="IsolationException"/> for what cannot cross.</summary>
    public static Boundary Create(string deployment, DeploymentDefinition caller, IBoundarySerializer callerSerializer, DeploymentDefinition callee, IBoundarySerializer calleeSerializer)
    {
        var plans = new List<MethodPlan>();
        var missing = new List<string>();
        foreach (var m in caller.Methods)
        {
            DeploymentMethod? target = null;
            foreach (var c in callee.Methods)
            {
                if (c.MethodId == m.MethodId)
                    target = c;
            }
            if (target is null || target.Kind != m.Kind || target.ParameterTypes.Length != m.ParameterTypes.Length)
            {
                missing.Add(Describe(m));
                continue;
            }
            var byReference = new bool[m.ParameterTypes.Length];
            for (var i = 0; i < byReference.Length; i++)
            {
                byReference[i] = m.ParameterTypes[i] == target.ParameterTypes[i];
                if (!byReference[i])
                {
                    CheckCrossable(deployment, m, $"parameter '{m.ParameterNames[i]}'", m.ParameterTypes[i], callerSerializer);
                    CheckCrossable(deployment, m, $"parameter '{m.ParameterNames[i]}'", target.ParameterTypes[i], calleeSerializer);
                }
            }
            if (m.ResultType is not null && target.ResultType is not null && m.ResultType != target.ResultType)
            {
                var what = m.Kind == DeploymentMethodKind.Stream ? "stream item type" : "result type";
                CheckCrossable(deployment, m, what, target.ResultType, calleeSerializer);
                CheckCrossable(deployment, m, what, m.ResultType, callerSerializer);
            }
            plans.Add(new MethodPlan(m, target, byReference, Array.TrueForAll(byReference, b => b)));
        }
        if (missing.Count > 0)
        {
            throw new IsolationException(deployment,
                $"Deployment '{deployment}': the code loaded from {Where(callee)} does not have method(s) {string.Join(", ", missing)} that the application's " +
                $"{caller.HandleType.Name} calls. Deploy a build of the same deployment class with those methods (or rebuild the application against the new code).");
        }
        return new Boundary(deployment, callee, callerSerializer, calleeSerializer, [.. plans]);
    }

    private static string Describe(DeploymentMethod m) =>
        $"{m.Name}({string.Join(", ", m.ParameterTypes.Select(t => t.Name))})";

    private static string Where(DeploymentDefinition d)
    {
        var assembly = d.ImplementationType.Assembly;
        return string.IsNullOrEmpty(assembly.Location) ? assembly.GetName().Name! : assembly.Location;
    }

    private static void CheckCrossable(string deployment, DeploymentMethod method, string what, Type type, IBoundarySerializer serializer)
    {
        if (serializer.CanSerialize(type, out var reason))
            return;
        throw new IsolationException(deployment,
            $"Deployment '{deployment}': method {method.Name} {what} of type {type} cannot cross the isolation boundary: the type is not shared " +
            $"(its assembly {type.Assembly.GetName().Name} is loaded separately in the isolated context) and {serializer.Format} cannot serialize it ({reason}). " +
            $"Move the type to a contract assembly and share it with RuntimeEnv.Isolated(\"{type.Assembly.GetName().Name}\") or .WithSharedAssemblies(...), " +
            "or make it a plain serializable data type (public properties and a public constructor).");
    }

    private MethodPlan Plan(int methodId)
    {
        foreach (var plan in _plans)
        {
            if (plan.Caller.MethodId == methodId)
                return plan;
        }
        throw InvokerHelpers.UnknownMethod(_deployment, methodId);
    }

    public ValueTask<TResult> InvokeAsync<TArgs, TResult>(in TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        ValueTask<object?> pending;
        try
        {
            var plan = Plan(arguments.MethodId);
            pending = _callee.Invoker.InvokeAsync(instance, arguments.MethodId, MarshalArguments(plan, arguments.GetArguments(), copy: false), cancellationToken);
            if (pending.IsCompletedSuccessfully)
                return new ValueTask<TResult>(ToCaller<TResult>(pending.Result));
        }
        catch (Exception e)
        {
            return ValueTask.FromException<TResult>(Translate(e));
        }
        return AwaitAsync<TResult>(pending);
    }

    public ValueTask InvokeVoidAsync<TArgs>(in TArgs arguments, object instance, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        ValueTask<object?> pending;
        try
        {
            var plan = Plan(arguments.MethodId);
            pending = _callee.Invoker.InvokeAsync(instance, arguments.MethodId, MarshalArguments(plan, arguments.GetArguments(), copy: false), cancellationToken);
            if (pending.IsCompletedSuccessfully)
                return default;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(Translate(e));
        }
        return AwaitVoidAsync(pending);
    }

    public async IAsyncEnumerable<TItem> InvokeStream<TArgs, TItem>(TArgs arguments, object instance, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TArgs : struct, IStreamInvocation<TItem>
    {
        var stream = await OpenStreamAsync(Plan(arguments.MethodId), arguments.GetArguments(), copy: false, instance, cancellationToken).ConfigureAwait(false);
        await using var enumerator = stream.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            TItem item;
            try
            {
                if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
                    yield break;
                item = ToCaller<TItem>(enumerator.Current);
            }
            catch (Exception e)
            {
                throw Rethrowable(e);
            }
            yield return item;
        }
    }

    /// <summary>The untyped path (boxed arguments, possibly <see cref="JsonElement"/>s from HTTP): the result is converted to the caller's type.</summary>
    public async ValueTask<object?> InvokeBoxedAsync(object instance, int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var plan = Plan(methodId);
        if (plan.Caller.Kind == DeploymentMethodKind.Stream)
        {
            var stream = await OpenStreamAsync(plan, arguments, copy: true, instance, cancellationToken).ConfigureAwait(false);
            return new ConvertedStream(this, stream, plan.Caller.ResultType!);
        }
        try
        {
            var result = await _callee.Invoker.InvokeAsync(instance, methodId, MarshalArguments(plan, arguments, copy: true), cancellationToken).ConfigureAwait(false);
            return plan.Caller.ResultType is { } type ? ToCaller(result, type) : null;
        }
        catch (Exception e)
        {
            throw Rethrowable(e);
        }
    }

    private async ValueTask<IAsyncEnumerable<object?>> OpenStreamAsync(MethodPlan plan, object?[] arguments, bool copy, object instance, CancellationToken cancellationToken)
    {
        object? boxed;
        try
        {
            boxed = await _callee.Invoker.InvokeAsync(instance, plan.Caller.MethodId, MarshalArguments(plan, arguments, copy), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Rethrowable(e);
        }
        return boxed as IAsyncEnumerable<object?>
            ?? throw new InvalidOperationException($"Deployment '{_deployment}': the isolated invoker did not return a stream for {plan.Caller.Name}; rebuild the deployment with the current Serve generator.");
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TResult> AwaitAsync<TResult>(ValueTask<object?> pending)
    {
        try
        {
            return ToCaller<TResult>(await pending.ConfigureAwait(false));
        }
        catch (Exception e)
        {
            throw Rethrowable(e);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask AwaitVoidAsync(ValueTask<object?> pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Rethrowable(e);
        }
    }

    private object?[] MarshalArguments(MethodPlan plan, object?[] arguments, bool copy)
    {
        // Typed calls with only shared parameter types (the common case) need no look at the values; boxed calls may
        // carry JsonElements from HTTP, which the callee must not deserialize with its own process-wide options.
        if (plan.AllByReference && !copy)
            return arguments;
        var types = plan.Callee.ParameterTypes;
        if (arguments.Length != types.Length)
            return arguments; // the callee's invoker reports the count mismatch with the method's name
        var result = arguments;
        for (var i = 0; i < arguments.Length; i++)
        {
            var value = arguments[i];
            if (value is null || (plan.ByReference[i] && value is not JsonElement) || types[i].IsInstanceOfType(value))
                continue;
            if (copy && ReferenceEquals(result, arguments))
                result = (object?[])arguments.Clone();
            try
            {
                result[i] = Cross(value, types[i], _callerSerializer, _calleeSerializer);
            }
            catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException)
            {
                throw new ArgumentException(
                    $"Deployment '{_deployment}': method {plan.Caller.Name} parameter '{plan.Caller.ParameterNames[i]}': a {value.GetType()} could not be converted to " +
                    $"{types[i]} across the isolation boundary: {e.Message}", e);
            }
        }
        return result;
    }

    private TResult ToCaller<TResult>(object? value)
    {
        if (value is TResult result)
            return result;
        if (value is null)
            return default!;
        return (TResult)Cross(value, typeof(TResult), _calleeSerializer, _callerSerializer)!;
    }

    private object? ToCaller(object? value, Type type) =>
        value is null || type.IsInstanceOfType(value) ? value : Cross(value, type, _calleeSerializer, _callerSerializer);

    /// <summary>Moves a value to another context's copy of its type by a serializer round trip (a thread-local buffer, no per-call array).</summary>
    internal static object? Cross(object? value, Type target, IBoundarySerializer from, IBoundarySerializer to)
    {
        if (value is null || target.IsInstanceOfType(value))
            return value;
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        from.Serialize(buffer, value, value.GetType());
        var result = to.Deserialize(buffer.WrittenSpan, target);
        if (buffer.Capacity > 1 << 16)
            t_buffer = null;
        return result;
    }

    /// <summary>
    /// Exceptions of isolated types cross as <see cref="BoundaryException"/> (inside an <see cref="InvalidInputException"/>
    /// when they derive from it); others as they are.
    /// </summary>
    internal static Exception Translate(Exception e)
    {
        if (!e.GetType().Assembly.IsCollectible)
            return e;
        var crossed = new BoundaryException(e, e.InnerException is null ? null : Translate(e.InnerException));
        // A subclass of Serve's InvalidInputException (e.g. Serve.Onnx's, loaded privately) stays a bad-input error: 400 over HTTP.
        return e is InvalidInputException ? new InvalidInputException(e.Message, crossed) : crossed;
    }

    private static Exception Rethrowable(Exception e)
    {
        var translated = Translate(e);
        if (ReferenceEquals(translated, e))
            ExceptionDispatchInfo.Throw(e);
        return translated;
    }

    private sealed record MethodPlan(DeploymentMethod Caller, DeploymentMethod Callee, bool[] ByReference, bool AllByReference);

    private sealed class ConvertedStream(Boundary boundary, IAsyncEnumerable<object?> inner, Type itemType) : IAsyncEnumerable<object?>
    {
        public async IAsyncEnumerator<object?> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            await using var enumerator = inner.GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                object? item;
                try
                {
                    if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
                        yield break;
                    item = boundary.ToCaller(enumerator.Current, itemType);
                }
                catch (Exception e)
                {
                    throw Rethrowable(e);
                }
                yield return item;
            }
        }
    }
}
