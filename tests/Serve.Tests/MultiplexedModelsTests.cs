using Serve.Multiplexing;

namespace Serve.Tests;

public class MultiplexedModelsTests
{
    private sealed class Model(string id) : IDisposable
    {
        public string Id => id;
        public bool Disposed { get; private set; }
        public void Dispose() => Disposed = true;
    }

    private static async Task<T> WithModelAsync<T>(string? modelId, Func<Task<T>> call)
    {
        var previous = ReplicaContext.EnterModel(modelId);
        try
        {
            return await call();
        }
        finally
        {
            ReplicaContext.EnterModel(previous);
        }
    }

    [Fact]
    public async Task Keeps_the_most_recently_used_models_and_disposes_the_evicted_one()
    {
        var cache = new MultiplexedModels<Model>("Models", maxModelsPerReplica: 2);
        var loaded = new List<Model>();
        Task<Model> Load(string id, CancellationToken _)
        {
            var m = new Model(id);
            lock (loaded)
                loaded.Add(m);
            return Task.FromResult(m);
        }

        var a = await WithModelAsync("a", () => cache.GetAsync(Load, default).AsTask());
        var b = await WithModelAsync("b", () => cache.GetAsync(Load, default).AsTask());
        Assert.Same(a, await WithModelAsync("a", () => cache.GetAsync(Load, default).AsTask())); // a is now the most recent
        var c = await WithModelAsync("c", () => cache.GetAsync(Load, default).AsTask());        // evicts b

        Assert.Equal(["c", "a"], cache.ModelIds);
        Assert.Equal(3, cache.Loads);
        await TestUtil.WaitUntilAsync(() => b.Disposed, "the evicted model is disposed");
        Assert.False(a.Disposed);
        Assert.False(c.Disposed);
        Assert.True(cache.Contains("a"));
        Assert.False(cache.Contains("b"));

        await cache.DisposeAsync();
        Assert.True(a.Disposed && c.Disposed);
    }

    [Fact]
    public async Task Concurrent_calls_for_one_model_share_one_load_and_a_failed_load_is_retried()
    {
        var cache = new MultiplexedModels<Model>("Models", 3);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loads = 0;
        var fail = true;
        async Task<Model> Load(string id, CancellationToken _)
        {
            Interlocked.Increment(ref loads);
            await gate.Task;
            if (fail)
                throw new InvalidOperationException("weights missing");
            return new Model(id);
        }

        var first = WithModelAsync("m", () => cache.GetAsync(Load, default).AsTask());
        var second = WithModelAsync("m", () => cache.GetAsync(Load, default).AsTask());
        gate.SetResult();
        Assert.Equal("weights missing", (await Assert.ThrowsAsync<InvalidOperationException>(() => first)).Message);
        await Assert.ThrowsAsync<InvalidOperationException>(() => second);
        Assert.Equal(1, loads);
        Assert.False(cache.Contains("m"));

        fail = false;
        Assert.Equal("m", (await WithModelAsync("m", () => cache.GetAsync(Load, default).AsTask())).Id);
        Assert.Equal(2, loads);
    }

    [Fact]
    public async Task A_call_without_a_model_id_is_told_how_to_give_one()
    {
        var cache = new MultiplexedModels<Model>("Models", 3);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => WithModelAsync(null, () => cache.GetAsync((id, _) => Task.FromResult(new Model(id)), default).AsTask()));

        Assert.Equal("Deployment 'Models': GetModelAsync needs the call's model id, but this call has none. Call through handle.WithModelId(\"model-id\"), " +
                     "or send the HTTP header serve_multiplexed_model_id.", e.Message);
    }
}
