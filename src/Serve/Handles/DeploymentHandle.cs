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
public partial class DeploymentHandle
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
        where TArgs : struct, IInvocation<TResult> =>
        Call<TypedCall<TArgs, TResult>, TResult>(new TypedCall<TArgs, TResult>(arguments), cancellationToken, offCaller: false);

    /// <summary>Calls a void method through the router; used by generated handles.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    protected ValueTask InvokeVoidAsync<TArgs>(TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation =>
        CallVoid(arguments, cancellationToken);

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
    /// <exception cref="NotSupportedException">The call method returns a stream; use <see cref="InvokeCallStreamAsync(object?[], CancellationToken)"/>.</exception>
    public ValueTask<object?> InvokeCallAsync(object?[] arguments, CancellationToken cancellationToken = default) =>
        InvokeCallAsync(arguments, cancellationToken, offCaller: false);

    /// <summary>
    /// <see cref="InvokeCallAsync(object?[], CancellationToken)"/>; with <paramref name="offCaller"/> the method never
    /// runs on the calling thread, so a caller racing the call against a deadline (the HTTP ingress's RequestTimeout)
    /// can stop waiting even when the method blocks its thread.
    /// </summary>
    /// <param name="arguments">The call method's arguments.</param>
    /// <param name="cancellationToken">Cancels the wait for a slot and the call.</param>
    /// <param name="offCaller">Never run the method on the calling thread.</param>
    /// <param name="receipt">Told which replica took the call (the HTTP ingress's access log), or <c>null</c>.</param>
    internal ValueTask<object?> InvokeCallAsync(object?[] arguments, CancellationToken cancellationToken, bool offCaller, CallReceipt? receipt = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var method = FindCall(arguments.Length);
        if (method.Kind == DeploymentMethodKind.Stream)
            throw new NotSupportedException($"The call method of deployment '{DeploymentName}' returns a stream; call it with InvokeCallStreamAsync (or through the typed {Definition.HandleType.Name}).");
        return InvokeBoxedAsync(method.MethodId, arguments, cancellationToken, offCaller, receipt);
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
    public IAsyncEnumerable<object?> InvokeCallStreamAsync(object?[] arguments, CancellationToken cancellationToken = default) =>
        InvokeCallStreamAsync(arguments, cancellationToken, receipt: null);

    /// <summary><see cref="InvokeCallStreamAsync(object?[], CancellationToken)"/>, telling <paramref name="receipt"/> which replica took the call.</summary>
    /// <param name="arguments">The call method's arguments.</param>
    /// <param name="cancellationToken">Cancels the wait for a slot and the stream.</param>
    /// <param name="receipt">Told which replica took the call (the HTTP ingress's access log), or <c>null</c>.</param>
    internal IAsyncEnumerable<object?> InvokeCallStreamAsync(object?[] arguments, CancellationToken cancellationToken, CallReceipt? receipt)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var method = FindCall(arguments.Length);
        if (method.Kind != DeploymentMethodKind.Stream)
            throw new NotSupportedException($"The call method of deployment '{DeploymentName}' does not return a stream; call it with InvokeCallAsync.");
        return StreamAsync<BoxedStream, object?>(new BoxedStream(method.MethodId, arguments, receipt), cancellationToken);
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
    internal ValueTask<object?> InvokeByIdAsync(int methodId, object?[] arguments, CancellationToken cancellationToken, bool offCaller = false, CallReceipt? receipt = null) =>
        InvokeBoxedAsync(methodId, arguments, cancellationToken, offCaller, receipt);

    /// <summary>Streams a method by id with boxed arguments through the router (the HTTP endpoints' path for <c>IAsyncEnumerable&lt;T&gt;</c>).</summary>
    internal IAsyncEnumerable<object?> InvokeStreamByIdAsync(int methodId, object?[] arguments, CancellationToken cancellationToken, CallReceipt? receipt = null) =>
        StreamAsync<BoxedStream, object?>(new BoxedStream(methodId, arguments, receipt), cancellationToken);

    private ValueTask<object?> InvokeBoxedAsync(int methodId, object?[] arguments, CancellationToken cancellationToken, bool offCaller = false, CallReceipt? receipt = null) =>
        Call<BoxedCall, object?>(new BoxedCall(methodId, arguments, receipt), cancellationToken, offCaller);
}
