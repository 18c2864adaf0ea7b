using System.Collections.Concurrent;

namespace Serve.Tests;

public sealed class ModelProbe
{
    public ConcurrentQueue<string> Loaded { get; } = new();
    public ConcurrentQueue<string> Disposed { get; } = new();
}

public sealed class LoadedModel(string id, ModelProbe probe) : IDisposable
{
    public string Id => id;
    public void Dispose() => probe.Disposed.Enqueue(id);
}

[Deployment(NumReplicas = 2)]
public partial class ModelServer(ModelProbe probe, ReplicaContext context)
{
    [Multiplexed(MaxModelsPerReplica = 2)]
    public async Task<LoadedModel> LoadModelAsync(string modelId)
    {
        await Task.Yield();
        probe.Loaded.Enqueue(modelId);
        return new LoadedModel(modelId, probe);
    }

    public async Task<string> Call(string input)
    {
        var model = await GetModelAsync();
        return $"{model.Id}:{input}@{context.ReplicaId} (ModelId={context.ModelId})";
    }
}

public class MultiplexingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static string ReplicaOf(string answer) => answer[(answer.IndexOf('@') + 1)..answer.IndexOf(' ')];

    [Fact]
    public async Task Calls_for_a_model_go_to_the_replica_that_holds_it_and_a_new_model_to_the_emptier_replica()
    {
        var probe = new ModelProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(ModelServer.Bind(probe)).WaitAsync(Bound);
        var m1 = handle.WithModelId("m1");

        var first = await m1.CallAsync("a");
        Assert.StartsWith("m1:a@", first);
        Assert.EndsWith("(ModelId=m1)", first);
        for (var i = 0; i < 10; i++)
            Assert.Equal(ReplicaOf(first), ReplicaOf(await m1.CallAsync("b")));
        Assert.Equal(["m1"], probe.Loaded); // loaded once, on one replica

        var m2 = await handle.WithModelId("m2").CallAsync("c");
        Assert.NotEqual(ReplicaOf(first), ReplicaOf(m2));
        Assert.Null(handle.ModelId); // the original handle is unchanged
        Assert.Equal("m1", m1.ModelId);
    }

    [Fact]
    public async Task A_replica_keeps_at_most_MaxModelsPerReplica_models_and_disposes_the_least_recently_used()
    {
        var probe = new ModelProbe();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(ModelServer.Bind(probe).WithOptions(o => o.NumReplicas = 1)).WaitAsync(Bound);

        await handle.WithModelId("m1").CallAsync("x");
        await handle.WithModelId("m2").CallAsync("x");
        await handle.WithModelId("m1").CallAsync("x"); // m1 is now the most recent
        await handle.WithModelId("m3").CallAsync("x"); // evicts m2

        await TestUtil.WaitUntilAsync(() => probe.Disposed.Contains("m2"), "the least recently used model is disposed");
        Assert.Equal(["m1", "m2", "m3"], probe.Loaded);
        Assert.Equal(["m2"], probe.Disposed);

        await serve.DeleteAsync("default").WaitAsync(Bound);
        Assert.Equal(["m1", "m2", "m3"], probe.Disposed.Order()); // the rest are disposed with the replica
    }

    [Fact]
    public async Task A_call_without_a_model_id_fails_with_the_fix()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(ModelServer.Bind(new ModelProbe())).WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await handle.CallAsync("x"));

        Assert.StartsWith("Deployment 'ModelServer': GetModelAsync needs the call's model id, but this call has none.", e.Message);
        Assert.Throws<ArgumentException>(() => handle.WithModelId(" "));
    }

    [Fact]
    public async Task The_HTTP_header_selects_the_model()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(ModelServer.Bind(new ModelProbe()), new RunOptions { RoutePrefix = "/models" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/models") { Content = new StringContent("""["web"]""", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("serve_multiplexed_model_id", "m7");

        using var response = await http.SendAsync(request).WaitAsync(Bound);

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("m7:web@", await response.Content.ReadAsStringAsync());
    }
}
