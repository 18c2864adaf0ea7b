using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace Serve.Orleans.Tests;

/// <summary>A record with a vector (one sentence embedding), as calls send them across nodes.</summary>
public sealed record Embedded(string Name, int Id, float[] Vector);

/// <summary>A shape JSON can write and read (its derived types are declared); MessagePack cannot create an interface.</summary>
[JsonPolymorphic]
[JsonDerivedType(typeof(Circle), "circle")]
public interface IShape
{
    double Area { get; }
}

/// <summary>The one shape.</summary>
public sealed record Circle(double Radius) : IShape
{
    public double Area => Math.PI * Radius * Radius;
}

[Deployment]
public sealed partial class WireModel([FromServices] NodeName node)
{
    public Embedded Echo(Embedded value) => value with { Name = $"{value.Name}@{node.Value}" };

    public float[] Scale(float[] vector, float by)
    {
        var result = new float[vector.Length];
        for (var i = 0; i < vector.Length; i++)
            result[i] = vector[i] * by;
        return result;
    }

    public double Area(IShape shape) => shape.Area;

    public async IAsyncEnumerable<Embedded> Chunks(int n)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            yield return new Embedded($"{i}@{node.Value}", i, Vector(i));
        }
    }

    public static float[] Vector(int seed)
    {
        var vector = new float[384];
        for (var i = 0; i < vector.Length; i++)
            vector[i] = MathF.Sin(seed + i) * 1e-3f * (i + 1);
        return vector;
    }
}

/// <summary>
/// The node-to-node wire format (<see cref="ServeClusterOptions.WireFormat"/>): records, vectors and streams make the round
/// trip across nodes in each format, nodes with different formats still talk, and a type the format cannot carry fails
/// with an error naming the deployment, the method, the type and the option.
/// </summary>
public sealed class WireFormatTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Two silos: Silo_0 (no replica, writes its calls in <paramref name="callerFormat"/>) and Silo_1 (the replica).</summary>
    private static async Task<InProcessTestCluster> StartAsync(BoundaryFormat? callerFormat, BoundaryFormat? replicaFormat = null)
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            // The cluster controller places the replica: only the second node offers the "slot" it needs.
            host.Services.AddServe(o =>
                {
                    o.Http.Enabled = false;
                    if (silo.SiloName != "Silo_0")
                        o.Resources.Custom["slot"] = 1;
                })
                .AddApplication(WireModel.Bind().WithOptions(o => o.Resources["slot"] = 1));
        });
        builder.ConfigureSilo((options, silo) => silo.AddServeNode(cluster =>
        {
            cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100);
            var format = options.SiloName == "Silo_0" ? callerFormat : replicaFormat;
            if (format is { } f)
                cluster.WireFormat = f;
        }));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static ServeHost Serve(InProcessTestCluster cluster, string name) =>
        cluster.Silos.Single(s => s.ServiceProvider.GetRequiredService<NodeName>().Value == name).ServiceProvider.GetRequiredService<ServeHost>();

    private static async Task<WireModelHandle> CallerAsync(InProcessTestCluster cluster)
    {
        var caller = Serve(cluster, "Silo_0");
        var router = caller.GetHandle("WireModel").Endpoint.Router;
        using var timeout = new CancellationTokenSource(Bound);
        while (!router.Replicas.Any(r => !r.IsLocal))
            await Task.Delay(20, timeout.Token);
        return caller.GetHandle<WireModelHandle>("WireModel");
    }

    [Theory]
    [InlineData(BoundaryFormat.MessagePack, BoundaryFormat.MessagePack)]
    [InlineData(BoundaryFormat.Json, BoundaryFormat.Json)]
    [InlineData(BoundaryFormat.HostDefault, BoundaryFormat.HostDefault)]
    [InlineData(BoundaryFormat.Json, BoundaryFormat.MessagePack)]
    public async Task Records_vectors_and_stream_items_make_the_round_trip_across_nodes_in_each_wire_format(BoundaryFormat callerFormat, BoundaryFormat replicaFormat)
    {
        await using var cluster = await StartAsync(callerFormat, replicaFormat);
        var handle = await CallerAsync(cluster).WaitAsync(Bound);

        var vector = WireModel.Vector(7);
        var echoed = await handle.EchoAsync(new Embedded("query", 7, vector)).AsTask().WaitAsync(Bound);
        Assert.Equal("query@Silo_1", echoed.Name);
        Assert.Equal(7, echoed.Id);
        Assert.Equal(vector, echoed.Vector);

        var scaled = await handle.ScaleAsync(vector, 2f).AsTask().WaitAsync(Bound);
        Assert.Equal(vector.Select(v => v * 2f), scaled);

        var items = new List<Embedded>();
        await foreach (var item in handle.ChunksAsync(3).WithCancellation(default))
            items.Add(item);
        Assert.Equal(["0@Silo_1", "1@Silo_1", "2@Silo_1"], items.Select(i => i.Name));
        Assert.All(items, i => Assert.Equal(WireModel.Vector(i.Id), i.Vector));
    }

    [Fact]
    public async Task MessagePack_is_the_default_wire_format()
    {
        Assert.Equal(BoundaryFormat.MessagePack, new ServeClusterOptions().WireFormat);
        await using var cluster = await StartAsync(callerFormat: null);
        var wire = cluster.Silos[0].ServiceProvider.GetRequiredService<WireSerializers>();
        Assert.Equal(BoundaryFormat.MessagePack, wire.Format);
        Assert.Equal("MessagePack", wire.Local.Format);

        var handle = await CallerAsync(cluster).WaitAsync(Bound);
        Assert.Equal(WireModel.Vector(1), (await handle.EchoAsync(new Embedded("a", 1, WireModel.Vector(1))).AsTask().WaitAsync(Bound)).Vector);
    }

    [Fact]
    public async Task A_type_the_wire_format_cannot_carry_fails_naming_deployment_method_type_and_the_option_and_Json_carries_it()
    {
        await using var cluster = await StartAsync(BoundaryFormat.MessagePack);
        var handle = await CallerAsync(cluster).WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<NotSupportedException>(() => handle.AreaAsync(new Circle(1)).AsTask().WaitAsync(Bound));
        output.WriteLine(e.Message);
        Assert.Contains("Deployment 'WireModel'", e.Message);
        Assert.Contains("method 'Area'", e.Message);
        Assert.Contains("argument 'shape'", e.Message);
        Assert.Contains(typeof(IShape).FullName!, e.Message);
        Assert.Contains("MessagePack", e.Message);
        Assert.Contains("ServeClusterOptions.WireFormat", e.Message);

        // The replica is not left holding a slot, and other calls still work.
        Assert.Equal("x@Silo_1", (await handle.EchoAsync(new Embedded("x", 0, [])).AsTask().WaitAsync(Bound)).Name);

        await using var json = await StartAsync(BoundaryFormat.Json);
        var jsonHandle = await CallerAsync(json).WaitAsync(Bound);
        Assert.Equal(Math.PI, await jsonHandle.AreaAsync(new Circle(1)).AsTask().WaitAsync(Bound), 9);
    }

    [Fact]
    public void An_unknown_wire_format_is_refused_naming_the_option_and_the_choices()
    {
        var options = new ServeClusterOptions { WireFormat = (BoundaryFormat)42 };
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Contains("ServeClusterOptions.WireFormat = 42", e.Message);
        Assert.Contains("MessagePack", e.Message);
        Assert.Contains("Json", e.Message);
    }
}
