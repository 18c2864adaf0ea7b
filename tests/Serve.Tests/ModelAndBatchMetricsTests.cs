using System.Collections.Concurrent;

namespace Serve.Tests;

/// <summary>The meter's model-load and batch-size instruments (multiplexing and batching record into the host's meter through their replica).</summary>
public class ModelAndBatchMetricsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Model_loads_are_counted_per_replica_on_the_Serve_meter()
    {
        var app = "mux-" + Guid.NewGuid().ToString("N")[..8];
        var loads = new ConcurrentQueue<string?>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Serve" && instrument.Name == "serve.multiplexed.model_loads")
                    l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            string? application = null, replica = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "application") application = tag.Value as string;
                if (tag.Key == "replica") replica = tag.Value as string;
            }
            if (application == app)
                loads.Enqueue(replica);
        });
        listener.Start();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(ModelServer.Bind(new ModelProbe()).WithOptions(o => o.NumReplicas = 1), new RunOptions { Name = app }).WaitAsync(Bound);

        await handle.WithModelId("a").CallAsync("x");
        await handle.WithModelId("a").CallAsync("x");
        await handle.WithModelId("b").CallAsync("x");

        var replica = serve.GetDeployment("ModelServer", app).Replicas.Single().ReplicaId;
        Assert.Equal([replica, replica], loads); // two models loaded, the repeated call loaded nothing
    }

    [Fact]
    public async Task Batch_sizes_are_recorded_per_replica_and_method_on_the_Serve_meter()
    {
        var app = "batch-" + Guid.NewGuid().ToString("N")[..8];
        var sizes = new ConcurrentQueue<(long Size, string? Method, string? Replica)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Serve" && instrument.Name == "serve.batch.size")
                    l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((_, size, tags, _) =>
        {
            string? application = null, method = null, replica = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "application") application = tag.Value as string;
                if (tag.Key == "method") method = tag.Value as string;
                if (tag.Key == "replica") replica = tag.Value as string;
            }
            if (application == app)
                sizes.Enqueue((size, method, replica));
        });
        listener.Start();
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(Doubler.Bind(new BatchProbe()).WithOptions(o => o.UserConfig = new BatchConfig(4)), new RunOptions { Name = app }).WaitAsync(Bound);

        var results = await Task.WhenAll(Enumerable.Range(1, 4).Select(i => handle.DoubleAsync(i).AsTask())).WaitAsync(Bound);

        Assert.Equal([2, 4, 6, 8], results.Order());
        var replica = serve.GetDeployment("Doubler", app).Replicas.Single().ReplicaId;
        var batch = Assert.Single(sizes);
        Assert.Equal(4, batch.Size);
        Assert.Equal(replica, batch.Replica);
        Assert.EndsWith("Double", batch.Method);
    }
}
