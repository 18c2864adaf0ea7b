using System.ComponentModel;

namespace Serve.Multiplexing;

/// <summary>What the router and the host need of a replica's loaded models.</summary>
public interface IMultiplexedModels
{
    /// <summary>True when <paramref name="modelId"/> is loaded (or loading) on this replica.</summary>
    bool Contains(string modelId);

    /// <summary>The loaded model ids, most recently used first.</summary>
    IReadOnlyList<string> ModelIds { get; }

    /// <summary>Disposes every loaded model (the replica is stopping).</summary>
    ValueTask DisposeAsync();

    /// <summary>Called when a load starts (the host's model-load metric); not for user code.</summary>
    Action? ModelLoading { get; set; }
}

/// <summary>
/// One replica's loaded models for a <see cref="MultiplexedAttribute"/> deployment: an LRU of at most
/// <c>MaxModelsPerReplica</c> loads; concurrent calls for one model share its load, a failed load is forgotten (the
/// next call retries), and an evicted model is disposed once its load has completed. Used by generated code.
/// </summary>
/// <typeparam name="TModel">The loader's model type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class MultiplexedModels<TModel> : IMultiplexedModels
{
    private readonly object _gate = new();
    private readonly LinkedList<(string Id, Task<TModel> Load)> _lru = new();
    private readonly Dictionary<string, LinkedListNode<(string Id, Task<TModel> Load)>> _byId = new(StringComparer.Ordinal);
    private readonly string _deployment;
    private readonly int _max;
    private bool _disposed;

    /// <summary>Creates the cache of one replica.</summary>
    public MultiplexedModels(string deployment, int maxModelsPerReplica)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxModelsPerReplica, 1);
        _deployment = deployment;
        _max = maxModelsPerReplica;
    }

    /// <summary>How many models were loaded by this replica (loads started), for tests and metrics.</summary>
    public int Loads { get; private set; }

    /// <inheritdoc />
    public Action? ModelLoading { get; set; }

    /// <inheritdoc />
    public bool Contains(string modelId)
    {
        lock (_gate)
            return _byId.ContainsKey(modelId);
    }

    /// <inheritdoc />
    public IReadOnlyList<string> ModelIds
    {
        get
        {
            lock (_gate)
                return [.. _lru.Select(e => e.Id)];
        }
    }

    /// <summary>
    /// The model of the current call (<see cref="ReplicaContext.ModelId"/>): the loaded one, or one loaded now with
    /// <paramref name="load"/>, evicting the least recently used model beyond the limit.
    /// </summary>
    /// <exception cref="InvalidOperationException">The call carries no model id.</exception>
    public async ValueTask<TModel> GetAsync(Func<string, CancellationToken, Task<TModel>> load, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(load);
        var modelId = ReplicaContext.CurrentModelId
            ?? throw new InvalidOperationException(
                $"Deployment '{_deployment}': GetModelAsync needs the call's model id, but this call has none. Call through handle.WithModelId(\"model-id\"), " +
                "or send the HTTP header serve_multiplexed_model_id.");
        Task<TModel> loading;
        List<Task<TModel>>? evicted = null;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_byId.TryGetValue(modelId, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                loading = node.Value.Load;
            }
            else
            {
                Loads++;
                ModelLoading?.Invoke();
                loading = LoadAsync(load, modelId);
                _byId[modelId] = _lru.AddFirst((modelId, loading));
                while (_lru.Count > _max)
                {
                    var last = _lru.Last!;
                    _lru.RemoveLast();
                    _byId.Remove(last.Value.Id);
                    (evicted ??= []).Add(last.Value.Load);
                }
            }
        }
        if (evicted is not null)
        {
            foreach (var old in evicted)
                _ = DisposeWhenLoadedAsync(old);
        }
        try
        {
            return await loading.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch when (loading.IsFaulted || loading.IsCanceled)
        {
            Forget(modelId, loading);
            throw;
        }
    }

    private static async Task<TModel> LoadAsync(Func<string, CancellationToken, Task<TModel>> load, string modelId)
    {
        await Task.Yield(); // never run a user loader under the cache's lock or on the caller's stack frame holding it
        return await load(modelId, CancellationToken.None).ConfigureAwait(false);
    }

    private void Forget(string modelId, Task<TModel> loading)
    {
        lock (_gate)
        {
            if (_byId.TryGetValue(modelId, out var node) && ReferenceEquals(node.Value.Load, loading))
            {
                _lru.Remove(node);
                _byId.Remove(modelId);
            }
        }
    }

    private static async Task DisposeWhenLoadedAsync(Task<TModel> load)
    {
        TModel model;
        try
        {
            model = await load.ConfigureAwait(false);
        }
        catch
        {
            return;
        }
        await Replicas.Disposal.DisposeAsync(model).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Task<TModel>[] all;
        lock (_gate)
        {
            _disposed = true;
            all = [.. _lru.Select(e => e.Load)];
            _lru.Clear();
            _byId.Clear();
        }
        foreach (var load in all)
            await DisposeWhenLoadedAsync(load).ConfigureAwait(false);
    }
}
