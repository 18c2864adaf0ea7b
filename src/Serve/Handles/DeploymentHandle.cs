using System.ComponentModel;
using System.Runtime.CompilerServices;
using Serve.CodeGeneration;
using Serve.Observability;
using Serve.Replicas;
using Serve.Routing;
using Serve.Scheduling;

namespace Serve;

/// <summary>
/// A client for one running deployment. The generator derives a typed handle (<c>XHandle</c>) with one method per
/// deployment method; this base class is also the untyped handle returned by
/// <see cref="IServeClient.GetHandle(string, string?)"/>. Handles are cheap, thread-safe and may be shared; they
/// stay valid across redeploys of their application, and fail with <see cref="DeploymentUnavailableException"/>
/// once it is deleted.
/// </summary>
/// <remarks>
/// A call takes a slot on a replica chosen by the router and runs the user method on the calling thread (no thread
/// hop) while the replica has a free CPU slot (<see cref="DeploymentOptions.NumCpus"/>), else on a thread-pool thread
/// once it gets one from the replica's CPU queue; when every replica is full it waits in the deployment's queue. A
/// handle with a <see cref="Timeout"/> never runs the method on the calling thread.
/// </remarks>
public class DeploymentHandle
{
    private readonly DeploymentEndpoint _endpoint;
    private readonly DeploymentRouter _router;
    private readonly DeploymentDefinition _definition;
    private readonly TimeSpan? _timeout;
    private readonly string? _modelId;

    /// <summary>Used by generated handles; not for user code.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    protected DeploymentHandle(HandleTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _endpoint = target.Endpoint;
        _router = _endpoint.Router;
        _definition = target.Definition;
        _timeout = target.Timeout;
        _modelId = target.ModelId;
    }

    internal DeploymentHandle(DeploymentEndpoint endpoint) : this(new HandleTarget(endpoint))
    {
    }

    /// <summary>The deployment this handle calls.</summary>
    public string DeploymentName => _endpoint.DeploymentName;

    /// <summary>The application the deployment belongs to.</summary>
    public string ApplicationName => _endpoint.ApplicationName;

    /// <summary>The deployment's generated definition (its methods, default options, types).</summary>
    public DeploymentDefinition Definition => _definition;

    internal DeploymentEndpoint Endpoint => _endpoint;

    /// <summary>The per-call timeout set with <see cref="DeploymentHandleExtensions.WithTimeout{THandle}"/>, or <c>null</c> for none.</summary>
    public TimeSpan? Timeout => _timeout;

    /// <summary>The model id set with <see cref="DeploymentHandleExtensions.WithModelId{THandle}"/>, or <c>null</c> for none.</summary>
    public string? ModelId => _modelId;

    /// <summary>A handle of the same type to the same deployment, with another timeout.</summary>
    internal DeploymentHandle WithTimeoutCore(TimeSpan? timeout) => WithOptionsCore(timeout, _modelId);

    /// <summary>A handle of the same type to the same deployment, with another model id.</summary>
    internal DeploymentHandle WithModelIdCore(string? modelId) => WithOptionsCore(_timeout, modelId);

    private DeploymentHandle WithOptionsCore(TimeSpan? timeout, string? modelId)
    {
        // Every per-handle call option is copied here.
        var target = new HandleTarget(_endpoint, _definition) { Timeout = timeout, ModelId = modelId };
        return GetType() == typeof(DeploymentHandle) ? new DeploymentHandle(target) : _definition.CreateHandle(target);
    }

    /// <summary>Takes a replica slot: for a model id, preferring replicas that hold the model (multiplexing).</summary>
    private ValueTask<IReplica> AcquireAsync(CancellationToken cancellationToken) =>
        _modelId is null ? _router.AcquireAsync(cancellationToken) : _router.AcquireForModelAsync(_modelId, cancellationToken);

    /// <summary>Makes the handle's model id the current call's (<see cref="ReplicaContext.ModelId"/>); called inside the async call paths, so it does not leak to the caller.</summary>
    private void EnterModel()
    {
        if (_modelId is not null)
            ReplicaContext.EnterModel(_modelId);
    }

    /// <inheritdoc />
    public override string ToString() => $"{GetType().Name}({ApplicationName}/{DeploymentName})";

    /// <summary>Calls a value method through the router; used by generated handles.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    protected ValueTask<TResult> InvokeAsync<TArgs, TResult>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        if (_timeout is not null || _modelId is not null)
            return InvokeWithDeadlineAsync<TArgs, TResult>(arguments, cancellationToken);
        if (!_router.TryAcquire(out var replica))
            return InvokeQueuedAsync<TArgs, TResult>(arguments, cancellationToken, offCaller: false);
        var started = _router.CallStarting();
        var token = CallToken(replica, cancellationToken, out var linked);
        ValueTask<TResult> pending;
        try
        {
            pending = Run<TArgs, TResult>(arguments, replica, token);
        }
        catch (Exception e)
        {
            linked?.Dispose();
            _router.Release(replica, started, failed: true);
            return ValueTask.FromException<TResult>(StoppedOr(e, replica, cancellationToken));
        }
        if (pending.IsCompletedSuccessfully)
        {
            var result = pending.Result;
            linked?.Dispose();
            _router.Release(replica, started, failed: false);
            return new ValueTask<TResult>(result);
        }
        return AwaitAndReleaseAsync(pending, replica, started, linked, cancellationToken);
    }

    /// <summary>Calls a void method through the router; used by generated handles.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    protected ValueTask InvokeVoidAsync<TArgs>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (_timeout is not null || _modelId is not null)
            return InvokeVoidWithDeadlineAsync(arguments, cancellationToken);
        if (!_router.TryAcquire(out var replica))
            return InvokeVoidQueuedAsync(arguments, cancellationToken, offCaller: false);
        var started = _router.CallStarting();
        var token = CallToken(replica, cancellationToken, out var linked);
        ValueTask pending;
        try
        {
            pending = RunVoid(arguments, replica, token);
        }
        catch (Exception e)
        {
            linked?.Dispose();
            _router.Release(replica, started, failed: true);
            return ValueTask.FromException(StoppedOr(e, replica, cancellationToken));
        }
        if (pending.IsCompletedSuccessfully)
        {
            pending.GetAwaiter().GetResult();
            linked?.Dispose();
            _router.Release(replica, started, failed: false);
            return default;
        }
        return AwaitAndReleaseAsync(pending, replica, started, linked, cancellationToken);
    }

    /// <summary>Calls a stream method through the router; used by generated handles. The replica slot is held until the stream ends.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    protected IAsyncEnumerable<TItem> InvokeStream<TArgs, TItem>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IStreamInvocation<TItem>
        => StreamAsync<TypedStream<TArgs, TItem>, TItem>(new TypedStream<TArgs, TItem>(arguments), cancellationToken);

    /// <summary>
    /// Calls a method by name with boxed arguments (an untyped call): <paramref name="methodName"/> is the deployment
    /// method's name (<c>Shout</c>) or its handle name (<c>ShoutAsync</c>). The result of a void method is <c>null</c>.
    /// </summary>
    /// <exception cref="MissingMethodException">The deployment has no such method with that many parameters.</exception>
    public ValueTask<object?> InvokeAsync(string methodName, object?[] arguments, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(methodName);
        ArgumentNullException.ThrowIfNull(arguments);
        var method = FindMethod(methodName, arguments.Length);
        if (method.Kind == DeploymentMethodKind.Stream)
            throw new NotSupportedException($"Method '{methodName}' of deployment '{DeploymentName}' returns a stream; call it through the typed {Definition.HandleType.Name}, or InvokeCallStreamAsync when it is the call method.");
        return InvokeBoxedAsync(method.MethodId, arguments, cancellationToken);
    }

    /// <summary>Calls the deployment's call method (<c>Call</c>/<c>CallAsync</c>) with boxed arguments.</summary>
    /// <exception cref="MissingMethodException">The deployment has no call method.</exception>
    /// <exception cref="NotSupportedException">The call method returns a stream; use <see cref="InvokeCallStreamAsync"/>.</exception>
    public ValueTask<object?> InvokeCallAsync(object?[] arguments, CancellationToken cancellationToken = default) =>
        InvokeCallAsync(arguments, cancellationToken, offCaller: false);

    /// <summary>
    /// <see cref="InvokeCallAsync(object?[], CancellationToken)"/>; with <paramref name="offCaller"/> the method never
    /// runs on the calling thread, so a caller racing the call against a deadline (the HTTP ingress's RequestTimeout)
    /// can stop waiting even when the method blocks its thread.
    /// </summary>
    internal ValueTask<object?> InvokeCallAsync(object?[] arguments, CancellationToken cancellationToken, bool offCaller)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var method = FindCall(arguments.Length);
        if (method.Kind == DeploymentMethodKind.Stream)
            throw new NotSupportedException($"The call method of deployment '{DeploymentName}' returns a stream; call it with InvokeCallStreamAsync (or through the typed {Definition.HandleType.Name}).");
        return InvokeBoxedAsync(method.MethodId, arguments, cancellationToken, offCaller);
    }

    /// <summary>
    /// Calls the deployment's streaming call method (a <c>Call</c>/<c>CallAsync</c> returning
    /// <c>IAsyncEnumerable&lt;T&gt;</c>) with boxed arguments and returns its items, boxed.
    /// </summary>
    /// <remarks>
    /// Nothing runs until the stream is enumerated. Enumeration takes a replica slot through the router (waiting in
    /// the queue like any call) and holds it until the stream ends, fails, or the consumer stops early; stopping early
    /// (disposing the enumerator, e.g. after <c>break</c>) or cancelling <paramref name="cancellationToken"/> cancels
    /// the token the deployment's stream was given.
    /// </remarks>
    /// <param name="arguments">The call method's arguments; <see cref="System.Text.Json.JsonElement"/>s are deserialized to the parameter types.</param>
    /// <param name="cancellationToken">Cancels the wait for a slot and the stream.</param>
    /// <exception cref="MissingMethodException">The deployment has no call method taking that many arguments.</exception>
    /// <exception cref="NotSupportedException">The call method does not return a stream; use <see cref="InvokeCallAsync(object?[], CancellationToken)"/>.</exception>
    public IAsyncEnumerable<object?> InvokeCallStreamAsync(object?[] arguments, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var method = FindCall(arguments.Length);
        if (method.Kind != DeploymentMethodKind.Stream)
            throw new NotSupportedException($"The call method of deployment '{DeploymentName}' does not return a stream; call it with InvokeCallAsync.");
        return StreamAsync<BoxedStream, object?>(new BoxedStream(method.MethodId, arguments), cancellationToken);
    }

    private DeploymentMethod FindCall(int argumentCount)
    {
        foreach (var m in Definition.Methods)
        {
            if (m.IsCall && m.ParameterTypes.Length == argumentCount)
                return m;
        }
        throw new MissingMethodException($"Deployment '{DeploymentName}' has no call method (a public method named Call or CallAsync) taking {argumentCount} argument(s).");
    }

    private DeploymentMethod FindMethod(string methodName, int argumentCount)
    {
        foreach (var m in Definition.Methods)
        {
            if ((m.Name == methodName || m.HandleName == methodName) && m.ParameterTypes.Length == argumentCount)
                return m;
        }
        var known = string.Join(", ", Definition.Methods.Select(m => $"{m.Name}({string.Join(", ", m.ParameterNames)})"));
        throw new MissingMethodException($"Deployment '{DeploymentName}' has no method '{methodName}' taking {argumentCount} argument(s). Its methods: {known}.");
    }

    /// <summary>Calls a method by id with boxed arguments through the router (the HTTP endpoints' path).</summary>
    internal ValueTask<object?> InvokeByIdAsync(int methodId, object?[] arguments, CancellationToken cancellationToken, bool offCaller = false) =>
        InvokeBoxedAsync(methodId, arguments, cancellationToken, offCaller);

    /// <summary>Streams a method by id with boxed arguments through the router (the HTTP endpoints' path for <c>IAsyncEnumerable&lt;T&gt;</c>).</summary>
    internal IAsyncEnumerable<object?> InvokeStreamByIdAsync(int methodId, object?[] arguments, CancellationToken cancellationToken) =>
        StreamAsync<BoxedStream, object?>(new BoxedStream(methodId, arguments), cancellationToken);

    private ValueTask<object?> InvokeBoxedAsync(int methodId, object?[] arguments, CancellationToken cancellationToken, bool offCaller = false)
    {
        if (_timeout is null)
            return InvokeBoxedCoreAsync(methodId, arguments, cancellationToken, offCaller);
        var deadline = new CallDeadline(this, methodId, _timeout, cancellationToken);
        return deadline.WaitAsync(InvokeBoxedCoreAsync(methodId, arguments, deadline.Token, offCaller: true));
    }

    // offCaller: never run the method on the caller's thread (a deadline call), so the caller can stop waiting at the
    // deadline even when the method blocks its thread.
    private async ValueTask<object?> InvokeBoxedCoreAsync(int methodId, object?[] arguments, CancellationToken cancellationToken, bool offCaller)
    {
        var replica = await AcquireAsync(cancellationToken).ConfigureAwait(false);
        EnterModel();
        HttpRequestScope.OnAcquired(replica);
        var started = _router.CallStarting();
        var token = CallToken(replica, cancellationToken, out var linked);
        var failed = true;
        try
        {
            var pending = offCaller
                ? (replica.Cpu ?? CpuLimiter.Unlimited).Queue((Handle: this, Replica: replica, MethodId: methodId, Arguments: arguments, Token: token), static s => s.Handle.InvokeBoxedCore(s.Replica, s.MethodId, s.Arguments, s.Token), token)
                : replica.Cpu is { } cpu
                ? cpu.Run((Handle: this, Replica: replica, MethodId: methodId, Arguments: arguments, Token: token), static s => s.Handle.InvokeBoxedCore(s.Replica, s.MethodId, s.Arguments, s.Token), token)
                : InvokeBoxedCore(replica, methodId, arguments, token);
            var result = await pending.ConfigureAwait(false);
            failed = false;
            return result;
        }
        catch (OperationCanceledException e) when (IsStopped(replica, cancellationToken))
        {
            throw replica.StoppedError(e);
        }
        finally
        {
            linked?.Dispose();
            _router.Release(replica, started, failed);
        }
    }

    // The replica's CPU limit (NumCpus): inline when a CPU slot is free, else from the replica's CPU queue. A
    // replica built from another copy of the code (an isolated context) is called across a boundary, under the same limit.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask<TResult> Run<TArgs, TResult>(TArgs arguments, IReplica replica, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        if (ReferenceEquals(replica.Definition, _definition))
            return replica.Cpu is { } cpu ? cpu.Invoke<TArgs, TResult>(arguments, replica.Instance, cancellationToken) : arguments.InvokeAsync(replica.Instance, cancellationToken);
        var boundary = replica.GetBoundary(_definition);
        return replica.Cpu is { } limited
            ? limited.Run((Boundary: boundary, Arguments: arguments, Instance: replica.Instance, Token: cancellationToken), static s => s.Boundary.InvokeAsync<TArgs, TResult>(s.Arguments, s.Instance, s.Token), cancellationToken)
            : boundary.InvokeAsync<TArgs, TResult>(arguments, replica.Instance, cancellationToken);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask RunVoid<TArgs>(TArgs arguments, IReplica replica, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (ReferenceEquals(replica.Definition, _definition))
            return replica.Cpu is { } cpu ? cpu.InvokeVoid(arguments, replica.Instance, cancellationToken) : arguments.InvokeAsync(replica.Instance, cancellationToken);
        var boundary = replica.GetBoundary(_definition);
        return replica.Cpu is { } limited
            ? limited.RunVoid((Boundary: boundary, Arguments: arguments, Instance: replica.Instance, Token: cancellationToken), static s => s.Boundary.InvokeVoidAsync(s.Arguments, s.Instance, s.Token), cancellationToken)
            : boundary.InvokeVoidAsync(arguments, replica.Instance, cancellationToken);
    }

    // A deadline call's synchronous part: like Run, but never on the caller's thread (the limiter's queue, or one hop to
    // the thread pool when the replica has no CPU limit).
    private ValueTask<TResult> RunOffCaller<TArgs, TResult>(TArgs arguments, IReplica replica, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        var limiter = replica.Cpu ?? CpuLimiter.Unlimited;
        if (ReferenceEquals(replica.Definition, _definition))
            return limiter.Queue((Arguments: arguments, Instance: replica.Instance, Token: cancellationToken), static s => s.Arguments.InvokeAsync(s.Instance, s.Token), cancellationToken);
        var boundary = replica.GetBoundary(_definition);
        return limiter.Queue((Boundary: boundary, Arguments: arguments, Instance: replica.Instance, Token: cancellationToken), static s => s.Boundary.InvokeAsync<TArgs, TResult>(s.Arguments, s.Instance, s.Token), cancellationToken);
    }

    private ValueTask RunVoidOffCaller<TArgs>(TArgs arguments, IReplica replica, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        var limiter = replica.Cpu ?? CpuLimiter.Unlimited;
        if (ReferenceEquals(replica.Definition, _definition))
            return limiter.QueueVoid((Arguments: arguments, Instance: replica.Instance, Token: cancellationToken), static s => s.Arguments.InvokeAsync(s.Instance, s.Token), cancellationToken);
        var boundary = replica.GetBoundary(_definition);
        return limiter.QueueVoid((Boundary: boundary, Arguments: arguments, Instance: replica.Instance, Token: cancellationToken), static s => s.Boundary.InvokeVoidAsync(s.Arguments, s.Instance, s.Token), cancellationToken);
    }

    private ValueTask<object?> InvokeBoxedCore(IReplica replica, int methodId, object?[] arguments, CancellationToken cancellationToken) =>
        ReferenceEquals(replica.Definition, _definition)
            ? _definition.Invoker.InvokeAsync(replica.Instance, methodId, arguments, cancellationToken)
            : replica.GetBoundary(_definition).InvokeBoxedAsync(replica.Instance, methodId, arguments, cancellationToken);

    /// <summary>
    /// The token the replica method sees: the caller's (which carries any timeout) together with the replica's abort
    /// token, cancelled when the replica stops with the call still running after its graceful shutdown timeout. A
    /// call without a token of its own gets the abort token as it is (no allocation); otherwise the two are linked
    /// for the call's duration (<paramref name="linked"/>, disposed when the call releases its slot).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static CancellationToken CallToken(IReplica replica, CancellationToken caller, out CancellationTokenSource? linked)
    {
        if (!caller.CanBeCanceled)
        {
            linked = null;
            return replica.AbortToken;
        }
        linked = CancellationTokenSource.CreateLinkedTokenSource(caller, replica.AbortToken);
        return linked.Token;
    }

    /// <summary>True when a call was cancelled by its replica stopping, not by its caller.</summary>
    private static bool IsStopped(IReplica replica, CancellationToken caller) =>
        replica.AbortToken.IsCancellationRequested && !caller.IsCancellationRequested;

    private static Exception StoppedOr(Exception e, IReplica replica, CancellationToken caller) =>
        e is OperationCanceledException && IsStopped(replica, caller) ? replica.StoppedError(e) : e;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TResult> AwaitAndReleaseAsync<TResult>(ValueTask<TResult> pending, IReplica replica, long started, CancellationTokenSource? linked, CancellationToken caller)
    {
        var failed = true;
        try
        {
            var result = await pending.ConfigureAwait(false);
            failed = false;
            return result;
        }
        catch (OperationCanceledException e) when (IsStopped(replica, caller))
        {
            throw replica.StoppedError(e);
        }
        finally
        {
            linked?.Dispose();
            _router.Release(replica, started, failed);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitAndReleaseAsync(ValueTask pending, IReplica replica, long started, CancellationTokenSource? linked, CancellationToken caller)
    {
        var failed = true;
        try
        {
            await pending.ConfigureAwait(false);
            failed = false;
        }
        catch (OperationCanceledException e) when (IsStopped(replica, caller))
        {
            throw replica.StoppedError(e);
        }
        finally
        {
            linked?.Dispose();
            _router.Release(replica, started, failed);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TResult> InvokeQueuedAsync<TArgs, TResult>(TArgs arguments, CancellationToken cancellationToken, bool offCaller)
        where TArgs : struct, IInvocation<TResult>
    {
        var replica = await AcquireAsync(cancellationToken).ConfigureAwait(false);
        EnterModel();
        var started = _router.CallStarting();
        var token = CallToken(replica, cancellationToken, out var linked);
        var failed = true;
        try
        {
            var result = await (offCaller ? RunOffCaller<TArgs, TResult>(arguments, replica, token) : Run<TArgs, TResult>(arguments, replica, token)).ConfigureAwait(false);
            failed = false;
            return result;
        }
        catch (OperationCanceledException e) when (IsStopped(replica, cancellationToken))
        {
            throw replica.StoppedError(e);
        }
        finally
        {
            linked?.Dispose();
            _router.Release(replica, started, failed);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask InvokeVoidQueuedAsync<TArgs>(TArgs arguments, CancellationToken cancellationToken, bool offCaller)
        where TArgs : struct, IVoidInvocation
    {
        var replica = await AcquireAsync(cancellationToken).ConfigureAwait(false);
        EnterModel();
        var started = _router.CallStarting();
        var token = CallToken(replica, cancellationToken, out var linked);
        var failed = true;
        try
        {
            await (offCaller ? RunVoidOffCaller(arguments, replica, token) : RunVoid(arguments, replica, token)).ConfigureAwait(false);
            failed = false;
        }
        catch (OperationCanceledException e) when (IsStopped(replica, cancellationToken))
        {
            throw replica.StoppedError(e);
        }
        finally
        {
            linked?.Dispose();
            _router.Release(replica, started, failed);
        }
    }

    // The deadline paths reuse the queued path (acquire, call, release) under a token that also carries the timeout, and
    // run the method off the caller's thread, so the caller can be released at the deadline even if the method blocks.
    private ValueTask<TResult> InvokeWithDeadlineAsync<TArgs, TResult>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>
    {
        if (_timeout is null)
            return InvokeQueuedAsync<TArgs, TResult>(arguments, cancellationToken, offCaller: false);
        var deadline = new CallDeadline(this, arguments.MethodId, _timeout, cancellationToken);
        return deadline.WaitAsync(InvokeQueuedAsync<TArgs, TResult>(arguments, deadline.Token, offCaller: true));
    }

    private ValueTask InvokeVoidWithDeadlineAsync<TArgs>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation
    {
        if (_timeout is null)
            return InvokeVoidQueuedAsync(arguments, cancellationToken, offCaller: false);
        var deadline = new CallDeadline(this, arguments.MethodId, _timeout, cancellationToken);
        return deadline.WaitAsync(InvokeVoidQueuedAsync(arguments, deadline.Token, offCaller: true));
    }

    /// <summary>
    /// Streams one call's items from a replica, holding its slot until the stream ends. The producer's token carries
    /// the caller's token and the handle's timeout, and is cancelled when the consumer stops early (typed and untyped
    /// streams alike), so the replica stops producing for nobody.
    /// </summary>
    private async IAsyncEnumerable<TItem> StreamAsync<TStream, TItem>(TStream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TStream : struct, IReplicaStream<TItem>
    {
        using var producer = new CallDeadline(this, stream.MethodId, _timeout, cancellationToken);
        IReplica replica;
        try
        {
            replica = await AcquireAsync(producer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (producer.TimedOut)
        {
            throw producer.TimeoutError();
        }
        HttpRequestScope.OnAcquired(replica);
        var started = _router.CallStarting();
        var token = CallToken(replica, producer.Token, out var linked);
        var failed = true;
        // With a timeout, the producer never runs on the consumer's thread and each item is raced against the
        // deadline, so a producer that blocks or ignores its token cannot hold its consumer past it. A move the consumer
        // stopped waiting for (abandoned) is awaited in the background before the enumerator is disposed and the slot freed.
        var raced = _timeout is not null;
        Task? abandoned = null;
        Task<IAsyncEnumerator<TItem>>? abandonedEnumerator = null;
        try
        {
            IAsyncEnumerator<TItem> enumerator;
            EnterModel();
            try
            {
                if (raced)
                {
                    var starting = StartStreamElsewhere<TStream, TItem>(stream, this, replica, token);
                    try
                    {
                        await producer.WaitForEitherAsync(starting).ConfigureAwait(false);
                    }
                    catch
                    {
                        (abandoned, abandonedEnumerator) = (starting, starting);
                        throw;
                    }
                    enumerator = await starting.ConfigureAwait(false);
                }
                else
                {
                    var items = await stream.StartAsync(this, replica, token).ConfigureAwait(false);
                    enumerator = items.GetAsyncEnumerator(token);
                }
            }
            catch (OperationCanceledException) when (producer.TimedOut)
            {
                throw producer.TimeoutError();
            }
            catch (OperationCanceledException e) when (IsStopped(replica, producer.Token))
            {
                throw replica.StoppedError(e);
            }
            var ended = false;
            try
            {
                while (true)
                {
                    // Only an exception from the producer counts as a failed call; a consumer stopping early does not.
                    failed = true;
                    bool more;
                    try
                    {
                        if (raced)
                        {
                            var next = MoveNextElsewhere(enumerator);
                            try
                            {
                                await producer.WaitForEitherAsync(next).ConfigureAwait(false);
                            }
                            catch
                            {
                                (abandoned, abandonedEnumerator) = (next, Task.FromResult(enumerator));
                                throw;
                            }
                            more = await next.ConfigureAwait(false);
                        }
                        else
                        {
                            more = await enumerator.MoveNextAsync().ConfigureAwait(false);
                        }
                    }
                    catch (OperationCanceledException) when (producer.TimedOut)
                    {
                        throw producer.TimeoutError();
                    }
                    catch (OperationCanceledException e) when (IsStopped(replica, producer.Token))
                    {
                        throw replica.StoppedError(e);
                    }
                    failed = false;
                    if (!more)
                    {
                        ended = true;
                        break;
                    }
                    yield return enumerator.Current;
                }
            }
            finally
            {
                if (!ended)
                    producer.Cancel();
                if (abandoned is null)
                    await enumerator.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (abandoned is null)
            {
                linked?.Dispose();
                _router.Release(replica, started, failed);
            }
            else
            {
                _ = FinishAbandonedAsync(abandoned, abandonedEnumerator!, replica, started, linked);
            }
        }
    }

    // A timed-out stream's start and moves run on the thread pool, so the consumer can stop waiting at the deadline.
    // Separate methods: lambdas in StreamAsync would allocate their closure for every stream, raced or not.
    private static Task<IAsyncEnumerator<TItem>> StartStreamElsewhere<TStream, TItem>(TStream stream, DeploymentHandle handle, IReplica replica, CancellationToken token)
        where TStream : struct, IReplicaStream<TItem> =>
        Task.Run(async () =>
        {
            var items = await stream.StartAsync(handle, replica, token).ConfigureAwait(false);
            return items.GetAsyncEnumerator(token);
        });

    private static Task<bool> MoveNextElsewhere<TItem>(IAsyncEnumerator<TItem> enumerator) =>
        Task.Run(() => enumerator.MoveNextAsync().AsTask());

    /// <summary>
    /// Disposes a timed-out stream's enumerator and frees its replica slot once the start or move its consumer stopped
    /// waiting for has returned: the replica is busy until then, and an enumerator must not be disposed mid-move.
    /// </summary>
    private async Task FinishAbandonedAsync<TItem>(Task pending, Task<IAsyncEnumerator<TItem>> enumerator, IReplica replica, long started, CancellationTokenSource? linked)
    {
        var failed = true;
        try
        {
            try
            {
                await pending.ConfigureAwait(false);
                failed = false;
            }
            catch (Exception)
            {
                // The consumer already got its TimeoutException or OperationCanceledException; nobody reads this one.
            }
            if (enumerator.IsCompletedSuccessfully)
                await enumerator.Result.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A producer's finally block threw while being disposed, after its consumer left.
        }
        finally
        {
            linked?.Dispose();
            _router.Release(replica, started, failed);
        }
    }

    /// <summary>How a stream call starts on a replica: typed (argument struct) or boxed (invoker switch), directly or across its boundary.</summary>
    private interface IReplicaStream<TItem>
    {
        int MethodId { get; }

        ValueTask<IAsyncEnumerable<TItem>> StartAsync(DeploymentHandle handle, IReplica replica, CancellationToken cancellationToken);
    }

    private readonly struct TypedStream<TArgs, TItem>(TArgs arguments) : IReplicaStream<TItem>
        where TArgs : struct, IStreamInvocation<TItem>
    {
        public int MethodId => arguments.MethodId;

        public ValueTask<IAsyncEnumerable<TItem>> StartAsync(DeploymentHandle handle, IReplica replica, CancellationToken cancellationToken) =>
            new(ReferenceEquals(replica.Definition, handle._definition)
                ? arguments.Invoke(replica.Instance, cancellationToken)
                : replica.GetBoundary(handle._definition).InvokeStream<TArgs, TItem>(arguments, replica.Instance, cancellationToken));
    }

    private readonly struct BoxedStream(int methodId, object?[] arguments) : IReplicaStream<object?>
    {
        public int MethodId => methodId;

        public async ValueTask<IAsyncEnumerable<object?>> StartAsync(DeploymentHandle handle, IReplica replica, CancellationToken cancellationToken)
        {
            var definition = handle._definition;
            var boxed = ReferenceEquals(replica.Definition, definition)
                ? await definition.Invoker.InvokeAsync(replica.Instance, methodId, arguments, cancellationToken).ConfigureAwait(false)
                : await replica.GetBoundary(definition).InvokeBoxedAsync(replica.Instance, methodId, arguments, cancellationToken).ConfigureAwait(false);
            return boxed as IAsyncEnumerable<object?> ?? throw new InvalidOperationException(
                $"Deployment '{handle.DeploymentName}': the invoker did not return a stream for a stream method; rebuild the deployment with the current Serve generator.");
        }
    }
}
