using Microsoft.Extensions.Logging;
using Serve.CodeGeneration;

namespace Serve.Replicas;

/// <summary>The life of one replica, as the controller sees it.</summary>
public enum ReplicaState
{
    /// <summary>Its constructor (and first reconfigure) is running.</summary>
    Starting,
    /// <summary>It serves calls.</summary>
    Running,
    /// <summary>It takes no new calls and drains the in-flight ones before it is disposed.</summary>
    Stopping,
    /// <summary>It is gone.</summary>
    Stopped,
}

/// <summary>
/// One running instance of a deployment. Owns the user object, counts in-flight calls, and drains before it is
/// disposed. The router talks to it through <see cref="IReplica"/>; a remote replica will implement the same.
/// </summary>
internal sealed class Replica : IReplica
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly DeploymentDefinition _definition;
    private int _ongoing;
    private volatile bool _closed;
    private object? _instance;

    public Replica(string applicationName, string deploymentName, string replicaId, string version, DeploymentDefinition definition)
    {
        _definition = definition;
        Context = new ReplicaContext(applicationName, deploymentName, replicaId, version, _stopping.Token);
    }

    public ReplicaContext Context { get; }
    public string ReplicaId => Context.ReplicaId;
    public string Version => Context.Version;
    public object Instance => _instance ?? throw new InvalidOperationException($"Replica {ReplicaId} has not started.");
    public int Ongoing => Volatile.Read(ref _ongoing);

    /// <summary>The user config JSON last applied by <see cref="ReconfigureAsync"/>.</summary>
    public string AppliedConfigJson { get; private set; } = "null";

    /// <summary>Runs the user constructor (on the thread pool) and the first reconfigure.</summary>
    public async Task StartAsync(int constructorIndex, object?[] arguments, IServiceProvider services, object? userConfig, string userConfigJson, CancellationToken cancellationToken)
    {
        var activation = new DeploymentActivation(Context.DeploymentName, constructorIndex, arguments, Context, services);
        _instance = await Task.Run(() => _definition.CreateInstance(activation), cancellationToken).ConfigureAwait(false);
        await ReconfigureAsync(userConfig, userConfigJson, cancellationToken).ConfigureAwait(false);
    }

    public async Task ReconfigureAsync(object? userConfig, string userConfigJson, CancellationToken cancellationToken)
    {
        if (_definition.Reconfigure is { } reconfigure)
            await reconfigure(Instance, userConfig, cancellationToken).ConfigureAwait(false);
        AppliedConfigJson = userConfigJson;
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

    /// <summary>Closes, waits for in-flight calls up to <paramref name="gracePeriod"/>, then disposes the user object.</summary>
    /// <returns>The number of calls still running when the grace period ran out.</returns>
    public async Task<int> StopAsync(TimeSpan gracePeriod, ILogger logger)
    {
        Close();
        var left = 0;
        if (!_drained.Task.IsCompleted)
        {
            try
            {
                await _drained.Task.WaitAsync(gracePeriod).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                left = Ongoing;
            }
        }
        try
        {
            switch (_instance)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
        catch (Exception e)
        {
            Log.ReplicaDisposeFailed(logger, ReplicaId, e);
        }
        // The stopping source is not disposed: user code may still hold its (cancelled) token.
        _instance = null;
        return left;
    }
}

/// <summary>
/// What the router needs from a replica: admission against a limit and release. A local replica implements it
/// today; a replica in another process or on another machine can implement it later.
/// </summary>
internal interface IReplica
{
    string ReplicaId { get; }
    int Ongoing { get; }
    object Instance { get; }
    bool TryAcquire(int maxOngoing);
    void Release();
}
