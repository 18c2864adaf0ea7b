using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using Microsoft.Extensions.Logging;
using Serve.CodeGeneration;
using Serve.Isolation;
using Serve.Observability;

namespace Serve.Replicas;

/// <summary>
/// One running instance of a deployment. Owns the user object, counts in-flight calls, and drains before it is
/// disposed. The router talks to it through <see cref="IReplica"/>; a remote replica will implement the same.
/// </summary>
internal sealed partial class Replica : IReplica
{
    /// <summary>How long a stopping replica waits for cancelled calls to return before it disposes its instance anyway.</summary>
    internal static readonly TimeSpan AbortWait = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _stopping = new();
    // Cancelled when the graceful shutdown timeout runs out with calls still running; every call's token carries it.
    // Never disposed: calls (and user code) may hold its token after the replica is gone.
    private readonly CancellationTokenSource _abort = new();
    private readonly CancellationToken _abortToken;
    private TimeSpan _gracePeriod;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly DeploymentDefinition _callerDefinition;
    private readonly IsolationPool _pool;
    private readonly ContextKey? _contextKey;
    private readonly ConditionalWeakTable<DeploymentDefinition, Boundary> _boundaries = new();
    private DeploymentDefinition _definition;
    private Boundary? _primaryBoundary;
    private IsolationPool.ContextLease? _lease;
    // Boxed so the replica's hot fields (_ongoing, _closed, _instance) stay close together.
    private readonly StrongBox<TagList> _metricTags;
    private int _ongoing;
    private volatile bool _closed;
    private object? _instance;

    // definition: the application's copy (what its handles were built from); contextKey: the isolated context to run
    // in, or null for the shared default context.
    public Replica(string applicationName, string deploymentName, string replicaId, string version, DeploymentDefinition definition, IsolationPool pool, ContextKey? contextKey)
    {
        _callerDefinition = definition;
        _definition = definition;
        _pool = pool;
        _contextKey = contextKey;
        Context = new ReplicaContext(applicationName, deploymentName, replicaId, version, _stopping.Token);
        _metricTags = new StrongBox<TagList>(ServeMetrics.ReplicaTags(applicationName, deploymentName, replicaId));
        _abortToken = _abort.Token;
    }

    /// <summary>Cancelled when the replica stops with calls still running after its graceful shutdown timeout.</summary>
    public CancellationToken AbortToken => _abortToken;

    /// <summary>The error a call fails with when the replica cancelled it while stopping.</summary>
    public ReplicaStoppedException StoppedError(Exception? cause) =>
        new(Context.ApplicationName, Context.DeploymentName, ReplicaId, _gracePeriod, cause);

    public ReplicaContext Context { get; }
    public string ReplicaId => Context.ReplicaId;
    public bool IsLocal => true;

    /// <summary>The node this process is in a cluster, or <c>null</c> on a single-node host.</summary>
    public string? NodeId { get; init; }
    public string Version => Context.Version;
    public object Instance => _instance ?? throw new InvalidOperationException($"Replica {ReplicaId} has not started.");
    public int Ongoing => Volatile.Read(ref _ongoing);
    public ref readonly TagList MetricTags => ref _metricTags.Value;

    /// <summary>The definition the instance was made from: the application's, or its isolated context's copy.</summary>
    public DeploymentDefinition Definition => _definition;

    /// <summary>The instance's loaded models when the deployment is <see cref="MultiplexedAttribute"/>, else <c>null</c>.</summary>
    public Multiplexing.IMultiplexedModels? Models { get; private set; }

    /// <summary>The instance's queues, one per <see cref="BatchAttribute"/> method (empty when it has none).</summary>
    public IReadOnlyList<Batching.BatchQueue> Batches { get; private set; } = [];

    /// <summary>The instance's health check (<see cref="IHealthCheckable"/> or a public <c>CheckHealthAsync(CancellationToken)</c>), or <c>null</c>.</summary>
    public Func<CancellationToken, ValueTask>? HealthCheck { get; private set; }

    /// <summary>The load context the replica runs in: <c>Default</c>, or the pooled context's name.</summary>
    public string LoadContextName { get; private set; } = "Default";

    /// <summary>The boundary for calls from code built against <paramref name="caller"/> (a definition other than <see cref="Definition"/>).</summary>
    public Boundary GetBoundary(DeploymentDefinition caller)
    {
        if (ReferenceEquals(caller, _callerDefinition) && _primaryBoundary is { } primary)
            return primary;
        if (_boundaries.TryGetValue(caller, out var boundary))
            return boundary;
        // Weakly keyed by the caller: a handle from an unloaded context must not keep that context alive through us.
        boundary = _pool.CreateBoundary(Context.DeploymentName, caller, _definition);
        _boundaries.AddOrUpdate(caller, boundary);
        return boundary;
    }

    /// <summary>Bounds the threads running this replica's calls (<see cref="DeploymentOptions.NumCpus"/>); null when unlimited.</summary>
    public Scheduling.CpuLimiter? Cpu { get; init; }

    /// <summary>The user config JSON last applied by <see cref="ReconfigureAsync"/>.</summary>
    public string AppliedConfigJson { get; private set; } = "null";

    /// <summary>Runs the user constructor (on the thread pool) and the first reconfigure.</summary>
    public async Task StartAsync(int constructorIndex, object?[] arguments, IServiceProvider services, object? userConfig, string userConfigJson, CancellationToken cancellationToken)
    {
        if (_contextKey is { } key)
        {
            _lease = await _pool.AcquireAsync(key, _callerDefinition).ConfigureAwait(false);
            var loaded = _lease.Loaded;
            _definition = loaded.Callee;
            _primaryBoundary = loaded.Primary;
            LoadContextName = loaded.Context.Name!;
            arguments = IntoContext(arguments, loaded.Context);
        }
        var activation = new DeploymentActivation(Context.DeploymentName, constructorIndex, arguments, Context, services);
        try
        {
            var definition = _definition;
            _instance = await Task.Run(() => definition.CreateInstance(activation), cancellationToken).ConfigureAwait(false);
            HealthCheck = FindHealthCheck(_instance);
            Models = definition.Multiplexed?.Invoke(_instance);
            Batches = definition.BatchQueues?.Invoke(_instance) ?? [];
            await ReconfigureAsync(userConfig, userConfigJson, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (_lease is not null && !ReferenceEquals(Boundary.Translate(e), e))
        {
            // The controller keeps start failures for the status; an isolated exception object would pin the context.
            throw Boundary.Translate(e);
        }
    }

    public async Task ReconfigureAsync(object? userConfig, string userConfigJson, CancellationToken cancellationToken)
    {
        if (_definition.Reconfigure is { } reconfigure)
        {
            if (_lease is { } lease && _definition.UserConfigType is { } configType)
                userConfig = Boundary.Cross(userConfig, configType, _pool.HostSerializerFor(lease.Loaded.Context), lease.Loaded.Context.Serializer);
            await reconfigure(Instance, userConfig, cancellationToken).ConfigureAwait(false);
        }
        AppliedConfigJson = userConfigJson;
    }

    /// <summary>
    /// Moves bound constructor arguments into the isolated context: handles become handles of the context's own copy
    /// of the referenced deployment's generated type, and values of types the context loads separately are copied.
    /// </summary>
    private object?[] IntoContext(object?[] arguments, ServeLoadContext context)
    {
        var result = (object?[])arguments.Clone();
        for (var i = 0; i < result.Length; i++)
        {
            switch (result[i])
            {
                case null:
                    break;
                case DeploymentHandle handle:
                    result[i] = IntoContext(handle, context);
                    break;
                case var value when !context.IsShared(value.GetType().Assembly.GetName().Name):
                    result[i] = Boundary.Cross(value, MapType(value.GetType(), context), _pool.HostSerializerFor(context), context.Serializer);
                    break;
            }
        }
        return result;
    }

    private DeploymentHandle IntoContext(DeploymentHandle handle, ServeLoadContext context)
    {
        var definition = handle.Definition;
        var assemblyName = definition.HandleType.Assembly.GetName();
        if (context.IsShared(assemblyName.Name))
            return handle;
        var assembly = context.LoadFromAssemblyName(assemblyName);
        if (AssemblyLoadContext.GetLoadContext(assembly) != context)
            return handle;
        RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        var mapped = context.FindByHandleType(definition.HandleType.FullName!)
            ?? throw new IsolationException(Context.DeploymentName,
                $"Deployment '{Context.DeploymentName}': its constructor takes a {definition.HandleType.Name}, but the isolated context's copy of {assemblyName.Name} does not declare that deployment. Build both from the same code.");
        return mapped.CreateHandle(new HandleTarget(handle.Endpoint, mapped));
    }

    /// <summary>Binds the health check once, at start (never per call): the interface, or a method of that name and shape.</summary>
    private static Func<CancellationToken, ValueTask>? FindHealthCheck(object instance)
    {
        if (instance is IHealthCheckable checkable)
            return checkable.CheckHealthAsync;
        var method = instance.GetType().GetMethod("CheckHealthAsync", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance, [typeof(CancellationToken)]);
        if (method is null)
            return null;
        if (method.ReturnType == typeof(ValueTask))
            return method.CreateDelegate<Func<CancellationToken, ValueTask>>(instance);
        if (method.ReturnType == typeof(Task))
        {
            var check = method.CreateDelegate<Func<CancellationToken, Task>>(instance);
            return token => new ValueTask(check(token));
        }
        return null;
    }

    private static Type MapType(Type type, ServeLoadContext context)
    {
        if (type.IsArray)
        {
            var element = MapType(type.GetElementType()!, context);
            return type.IsSZArray ? element.MakeArrayType() : element.MakeArrayType(type.GetArrayRank());
        }
        if (type.IsGenericType && !type.IsGenericTypeDefinition)
            return MapType(type.GetGenericTypeDefinition(), context).MakeGenericType([.. type.GetGenericArguments().Select(t => MapType(t, context))]);
        if (context.IsShared(type.Assembly.GetName().Name))
            return type;
        return context.LoadFromAssemblyName(type.Assembly.GetName()).GetType(type.FullName!, throwOnError: true)!;
    }

    public bool TryAcquire(int maxOngoing)
    {
        while (true)
        {
            var current = Volatile.Read(ref _ongoing);
            if (current >= maxOngoing)
                return false;
            if (Interlocked.CompareExchange(ref _ongoing, current + 1, current) != current)
                continue;
            // Dekker pairing with Close(): the interlocked increment above is a full fence, so either Close sees
            // our call in _ongoing, or we see _closed here and back out.
            if (_closed)
            {
                Release();
                return false;
            }
            return true;
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _ongoing) == 0 && _closed)
            _drained.TrySetResult();
    }

    /// <summary>Takes no new calls from now on and signals <see cref="Context"/>'s stopping token.</summary>
    public void Close()
    {
        _closed = true;
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _ongoing) == 0)
            _drained.TrySetResult();
        try
        {
            _stopping.Cancel();
        }
        catch (AggregateException)
        {
            // A user callback on the stopping token threw; stopping goes on.
        }
    }

    /// <summary>True when every in-flight call has finished, waiting at most <paramref name="timeout"/>.</summary>
    private async ValueTask<bool> DrainedWithinAsync(TimeSpan timeout)
    {
        if (_drained.Task.IsCompleted)
            return true;
        try
        {
            await _drained.Task.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private void Abort()
    {
        try
        {
            _abort.Cancel();
        }
        catch (AggregateException)
        {
            // A user callback on a call's token threw; stopping goes on.
        }
    }

    /// <summary>
    /// Closes, waits for in-flight calls up to <paramref name="gracePeriod"/>, then cancels the tokens of the calls
    /// still running, waits up to <see cref="AbortWait"/> for them to return, and disposes the user object.
    /// </summary>
    /// <returns>The number of calls still running when the grace period ran out.</returns>
    public async Task<int> StopAsync(TimeSpan gracePeriod, ILogger logger)
    {
        _gracePeriod = gracePeriod;
        Close();
        // No call will join a waiting batch any more: run those batches now instead of after their wait.
        foreach (var queue in Batches)
            queue.StartWaitingNow();
        var left = 0;
        if (!await DrainedWithinAsync(gracePeriod).ConfigureAwait(false))
        {
            left = Ongoing;
            Abort();
            // A method that ignores its token is not waited for beyond this: the instance is disposed under it, and
            // its caller still gets its outcome.
            await DrainedWithinAsync(AbortWait).ConfigureAwait(false);
        }
        try
        {
            await Disposal.DisposeAsync(_instance).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.ReplicaDisposeFailed(logger, ReplicaId, e);
        }
        // The stopping source is not disposed: user code may still hold its (cancelled) token.
        if (Models is { } models)
        {
            try
            {
                await models.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Log.ReplicaDisposeFailed(logger, ReplicaId, e);
            }
        }
        // Sessions and other per-replica state libraries registered (ReplicaContext.RegisterForDispose), before the GPU share they may use.
        foreach (var e in Context.DisposeRegistered())
            Log.ReplicaDisposeFailed(logger, ReplicaId, e);
        try
        {
            // After the user object and its loaded models: they may free device memory through its GPU share while disposing.
            Context.Gpu?.Dispose();
        }
        catch (Exception e)
        {
            Log.ReplicaDisposeFailed(logger, ReplicaId, e);
        }
        _instance = null;
        HealthCheck = null;
        Models = null;
        Batches = [];
        // Let go of everything that belongs to an isolated context so it can unload once its last replica is gone.
        _boundaries.Clear();
        _primaryBoundary = null;
        _definition = _callerDefinition;
        Interlocked.Exchange(ref _lease, null)?.Release();
        return left;
    }
}

/// <summary>
/// What the router and handles need from a replica: admission against a limit (<see cref="TryAcquire"/>/<see cref="Release"/>)
/// and running the calls it admitted, typed, boxed or streamed. The replica decides how a call runs (directly, across an
/// isolated context's boundary, under its CPU limit); nothing here exposes the instance, so a replica in another process
/// or on another machine can implement it. Every invoke is made between a successful <see cref="TryAcquire"/> and its
/// <see cref="Release"/>. A replica on another node may fail an invoke with <see cref="ReplicaRefusedException"/> (it
/// was full there; the handle tries elsewhere) or <see cref="ReplicaLostException"/> (its node failed with the call in
/// flight; the handle retries once when <see cref="DeploymentOptions.RetryOnNodeFailure"/> is on).
/// </summary>
internal interface IReplica
{
    string ReplicaId { get; }
    int Ongoing { get; }

    /// <summary>
    /// True when the replica runs in this process. The router prefers local replicas and sends a call to another node
    /// only when none of them has room. Read when the replica set changes, never per call.
    /// </summary>
    bool IsLocal { get; }

    /// <summary>The node the replica runs on (multi-node Serve), or <c>null</c> on a single-node host.</summary>
    string? NodeId { get; }

    /// <summary>The models it holds when the deployment is multiplexed (model-aware routing), else <c>null</c>.</summary>
    Multiplexing.IMultiplexedModels? Models { get; }

    /// <summary>The application, deployment and replica tags its metrics carry, built once.</summary>
    ref readonly TagList MetricTags { get; }

    /// <summary>Cancelled when the replica stops with calls still running after its graceful shutdown timeout; every call's token carries it.</summary>
    CancellationToken AbortToken { get; }

    /// <summary>The error a call fails with when the replica cancelled it while stopping.</summary>
    ReplicaStoppedException StoppedError(Exception? cause);

    /// <summary>Takes a call slot unless <paramref name="maxOngoing"/> calls are running or the replica is closed.</summary>
    bool TryAcquire(int maxOngoing);

    /// <summary>Gives back a slot taken by <see cref="TryAcquire"/>.</summary>
    void Release();

    /// <summary>
    /// Runs a typed call of a value method. <paramref name="caller"/> is the definition the calling handle was built
    /// from (it tells the replica whether a boundary must be crossed); with <paramref name="offCaller"/> the method never
    /// runs on the calling thread, so a caller racing a deadline can stop waiting even when it blocks.
    /// </summary>
    ValueTask<TResult> InvokeAsync<TArgs, TResult>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult>;

    /// <summary>The void-method counterpart of <see cref="InvokeAsync{TArgs, TResult}"/>.</summary>
    ValueTask InvokeVoidAsync<TArgs>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation;

    /// <summary>Runs a method by id with boxed arguments (untyped handles, HTTP); a void method's result is <c>null</c>.</summary>
    ValueTask<object?> InvokeBoxedAsync(DeploymentDefinition caller, int methodId, object?[] arguments, bool offCaller, CancellationToken cancellationToken);

    /// <summary>Starts a typed stream call; the caller holds its slot until the stream ends.</summary>
    ValueTask<IAsyncEnumerable<TItem>> InvokeStreamAsync<TArgs, TItem>(DeploymentDefinition caller, TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IStreamInvocation<TItem>;

    /// <summary>Starts a stream method by id with boxed arguments; its items come boxed.</summary>
    ValueTask<IAsyncEnumerable<object?>> InvokeBoxedStreamAsync(DeploymentDefinition caller, int methodId, object?[] arguments, CancellationToken cancellationToken);
}
