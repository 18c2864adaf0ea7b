using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Serve.Orleans.Tests;

/// <summary>A multiplexed deployment: says which model, replica and node served a call.</summary>
[Deployment(MaxOngoingRequests = 16)]
public sealed partial class NodeModels([FromServices] NodeName node, ReplicaContext context)
{
    public static readonly ConcurrentQueue<string> Loaded = new();

    [Multiplexed(MaxModelsPerReplica = 2)]
    public Task<string> LoadAsync(string modelId)
    {
        Loaded.Enqueue($"{modelId}@{context.ReplicaId}");
        return Task.FromResult(modelId);
    }

    public async Task<string> Ask(string input)
    {
        var model = await GetModelAsync();
        return $"{model}:{input}@{context.ReplicaId}@{node.Value} (ModelId={context.ModelId})";
    }
}

/// <summary>A batched deployment: each call learns the size of the batch it ran in.</summary>
[Deployment(MaxOngoingRequests = 16)]
public sealed partial class NodeBatcher([FromServices] NodeName node)
{
    [Batch(MaxBatchSize = 8, BatchWaitTimeoutMs = 200)]
    public IReadOnlyList<string> Size(IReadOnlyList<int> items) => [.. items.Select(i => $"{i}:{items.Count}@{node.Value}")];
}

/// <summary>A two-deployment graph: the ingress asks a model deployment through its handle.</summary>
[Deployment]
public sealed partial class GraphFront([FromServices] NodeName node, GraphModelHandle model)
{
    public async Task<string> Run(string input) => $"front@{node.Value} -> {await model.PredictAsync(input)}";
}

[Deployment]
public sealed partial class GraphModel([FromServices] NodeName node)
{
    public string Predict(string input) => $"model({input})@{node.Value}";
}

/// <summary>
/// Model multiplexing, batching and deployment graphs across nodes (Orleans in-process test cluster, 2 silos): the
/// first silo runs no replica of the called deployment, so every call crosses to the other one.
/// </summary>
public sealed class CrossNodeFeaturesTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static async Task<InProcessTestCluster> StartAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            var first = silo.SiloName == "Silo_0";
            // The cluster controller places the replicas: the first node offers only "front", the other only "back".
            host.Services.AddServe(o =>
                {
                    o.Http.Enabled = false;
                    o.Resources.Custom[first ? "front" : "back"] = 10;
                })
                .AddApplication(NodeModels.Bind().WithOptions(o => { o.NumReplicas = 2; o.Resources["back"] = 1; }), new RunOptions { Name = "models", RoutePrefix = "/models" })
                .AddApplication(NodeBatcher.Bind().WithOptions(o => { o.NumReplicas = 1; o.Resources["back"] = 1; }), new RunOptions { Name = "batch", RoutePrefix = "/batch" })
                .AddApplication(GraphFront.Bind(GraphModel.Bind().WithOptions(o => { o.NumReplicas = 1; o.Resources["back"] = 1; })).WithOptions(o => { o.NumReplicas = 1; o.Resources["front"] = 1; }),
                    new RunOptions { Name = "graph", RoutePrefix = "/graph" });
        });
        builder.ConfigureSilo((_, silo) => silo.AddServeNode(cluster => cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100)));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static ServeHost Serve(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ServeHost>();

    private static ServeHost First(InProcessTestCluster cluster) =>
        Serve(cluster.Silos.Single(s => s.ServiceProvider.GetRequiredService<NodeName>().Value == "Silo_0"));

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while (!condition())
            await Task.Delay(20, timeout.Token);
    }

    [Fact]
    public async Task A_model_id_crosses_nodes_and_calls_for_a_loaded_model_go_to_the_remote_replica_that_holds_it()
    {
        await using var cluster = await StartAsync();
        var first = First(cluster);
        var router = first.GetHandle("NodeModels", "models").Endpoint.Router;
        await WaitUntilAsync(() => router.Replicas.Count(r => !r.IsLocal) == 2).WaitAsync(Bound);
        var m1 = first.GetHandle<NodeModelsHandle>("NodeModels", "models").WithModelId("m1");

        var answer = await m1.AskAsync("a").AsTask().WaitAsync(Bound);
        Assert.StartsWith("m1:a@", answer);
        Assert.EndsWith("@Silo_1 (ModelId=m1)", answer);
        var holder = answer.Split('@')[1];

        // Once the node lists the loaded model, model-aware routing on the first node prefers that remote replica.
        await WaitUntilAsync(() => router.Replicas.Any(r => r.ReplicaId == holder && r.Models?.Contains("m1") == true)).WaitAsync(Bound);
        for (var i = 0; i < 10; i++)
            Assert.Equal(holder, (await m1.AskAsync("b").AsTask().WaitAsync(Bound)).Split('@')[1]);
        Assert.Single(NodeModels.Loaded, l => l.StartsWith("m1@", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Concurrent_calls_from_another_node_share_batches_on_the_replicas_node()
    {
        await using var cluster = await StartAsync();
        var first = First(cluster);
        var router = first.GetHandle("NodeBatcher", "batch").Endpoint.Router;
        await WaitUntilAsync(() => router.Replicas.Count(r => !r.IsLocal) == 1).WaitAsync(Bound);
        var handle = first.GetHandle<NodeBatcherHandle>("NodeBatcher", "batch");

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => handle.SizeAsync(i).AsTask())).WaitAsync(Bound);

        Assert.All(answers, a => Assert.EndsWith("@Silo_1", a));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"{i}:"), answers.Select(a => a[..(a.IndexOf(':') + 1)]));
        // Eight calls sent together within the batch's wait: the replica ran them in fewer than eight model runs.
        Assert.Contains(answers, a => int.Parse(a[(a.IndexOf(':') + 1)..a.IndexOf('@')]) > 1);
    }

    [Fact]
    public async Task A_graph_whose_ingress_runs_on_one_node_calls_its_model_on_another()
    {
        await using var cluster = await StartAsync();
        var first = First(cluster);
        var router = first.GetHandle("GraphModel", "graph").Endpoint.Router;
        await WaitUntilAsync(() => router.Replicas.Count(r => !r.IsLocal) == 1).WaitAsync(Bound);

        var answer = await first.GetHandle<GraphFrontHandle>("GraphFront", "graph").RunAsync("x").AsTask().WaitAsync(Bound);

        Assert.Equal("front@Silo_0 -> model(x)@Silo_1", answer);
    }
}
