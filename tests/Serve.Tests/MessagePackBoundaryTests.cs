using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using Serve.Isolation;
using SwapModel;

namespace Serve.Tests;

public sealed record Blob(byte[] Bytes, ReadOnlyMemory<byte> Memory, ReadOnlyMemory<float> Floats);

public sealed record Reading(string Sensor, double[] Values, Dictionary<string, int> Counts, Reading? Previous);

public class MessagePackBoundaryTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    private static Task<ServeHost> StartWithMessagePackAsync() =>
        ServeHost.StartAsync(o => { o.Http.Enabled = false; o.BoundarySerializer = static () => new MessagePackBoundarySerializer(); });

    private static Features Sample() => new(
        "f1", [1f, 2.5f, -3f], new float[] { 0.25f, 0.5f }, [2, 3], Priority.High,
        [new Order("apple", 3), new Order("pear", 1)], new() { ["a"] = 0.5, ["b"] = -1 }, new Order("fig", 9),
        new DateTime(2026, 12, 1, 3, 0, 0, DateTimeKind.Utc), null);

    private static void AssertEchoed(Features sent, Features back, string code)
    {
        Assert.Equal(sent.Id + "@" + code, back.Id);
        Assert.Equal(sent.Vector.Select(x => x * 2), back.Vector);
        Assert.Equal(sent.Extra.ToArray(), back.Extra.ToArray());
        Assert.Equal(sent.Shape, back.Shape);
        Assert.Equal(sent.Priority, back.Priority);
        Assert.Equal(sent.Orders, back.Orders);
        Assert.Equal(sent.Scores, back.Scores);
        Assert.Equal(sent.Best, back.Best);
        Assert.Equal(sent.At, back.At);
        Assert.Null(back.Rank);
    }

    [Fact]
    public void Records_arrays_dictionaries_and_nulls_make_the_round_trip()
    {
        var serializer = new MessagePackBoundarySerializer();
        var value = new Reading("t1", [1.5, 2], new() { ["x"] = 3 }, new Reading("t0", [], [], null));
        var buffer = new ArrayBufferWriter<byte>();

        serializer.Serialize(buffer, value, typeof(Reading));
        var back = Assert.IsType<Reading>(serializer.Deserialize(buffer.WrittenSpan, typeof(Reading)));

        Assert.Equal("t1", back.Sensor);
        Assert.Equal([1.5, 2], back.Values);
        Assert.Equal(3, back.Counts["x"]);
        Assert.Equal("t0", back.Previous!.Sensor);
        Assert.Null(back.Previous.Previous);
        Assert.Equal("MessagePack", serializer.Format);
    }

    [Fact]
    public void Values_read_back_do_not_share_the_serializers_pooled_buffer()
    {
        var serializer = new MessagePackBoundarySerializer();
        var first = new ArrayBufferWriter<byte>();
        var second = new ArrayBufferWriter<byte>();
        serializer.Serialize(first, new Blob([1, 2, 3], new byte[] { 4, 5 }, new float[] { 6, 7 }), typeof(Blob));
        serializer.Serialize(second, new Blob([9, 9, 9], new byte[] { 9, 9 }, new float[] { 9, 9 }), typeof(Blob));

        var a = (Blob)serializer.Deserialize(first.WrittenSpan, typeof(Blob))!;
        _ = serializer.Deserialize(second.WrittenSpan, typeof(Blob)); // reuses the pooled buffer

        Assert.Equal([1, 2, 3], a.Bytes);
        Assert.Equal([4, 5], a.Memory.ToArray());
        Assert.Equal([6f, 7f], a.Floats.ToArray());
    }

    [Fact]
    public void A_384_float_vector_is_written_as_raw_floats_not_text()
    {
        var vector = Enumerable.Range(0, 384).Select(i => i / 384f).ToArray();
        var value = new Features("v", vector, ReadOnlyMemory<float>.Empty, [384], Priority.Low, [], [], null, default, 1);
        var pack = new ArrayBufferWriter<byte>();
        var json = new ArrayBufferWriter<byte>();

        new MessagePackBoundarySerializer().Serialize(pack, value, typeof(Features));
        new JsonBoundarySerializer().Serialize(json, value, typeof(Features));

        Assert.InRange(pack.WrittenCount, 384 * 5, 384 * 5 + 200); // 1 marker byte + 4 bytes per float
        Assert.True(json.WrittenCount > pack.WrittenCount * 3 / 2, $"JSON {json.WrittenCount} bytes, MessagePack {pack.WrittenCount}");
        var back = (Features)new MessagePackBoundarySerializer().Deserialize(pack.WrittenSpan, typeof(Features))!;
        Assert.Equal(vector, back.Vector);
    }

    [Fact]
    public void Types_it_cannot_create_are_refused_up_front_with_the_reason()
    {
        var serializer = new MessagePackBoundarySerializer();

        Assert.False(serializer.CanSerialize(typeof(IShape), out var shape));
        Assert.Contains("interface", shape);
        Assert.False(serializer.CanSerialize(typeof(Func<int>), out var function));
        Assert.Contains("delegate", function);
        Assert.True(serializer.CanSerialize(typeof(Features), out _));
    }

    [Fact]
    public async Task An_isolated_deployment_takes_and_returns_its_own_records_vectors_and_memory_over_MessagePack()
    {
        await using var serve = await StartWithMessagePackAsync();
        var model = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2")))).WaitAsync(Bound);

        Assert.Equal(new Order("apple@v2", 6), await model.DoubleAsync(new Order("apple", 3)).AsTask().WaitAsync(Bound));
        var sent = Sample();
        AssertEchoed(sent, await model.EchoAsync(sent).AsTask().WaitAsync(Bound), "v2");
    }

    [Fact]
    public async Task Deleting_an_application_still_unloads_its_isolated_context_with_MessagePack()
    {
        await using var serve = await StartWithMessagePackAsync();
        var handle = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V1"))),
            new RunOptions { Name = "packed", RoutePrefix = "/packed" }).WaitAsync(Bound);
        // Make the serializers build formatters for the context's types (records, lists, dictionaries, an enum).
        AssertEchoed(Sample(), await handle.EchoAsync(Sample()).AsTask().WaitAsync(Bound), "v1");
        Assert.Equal(new Order("pear@v1", 4), await handle.DoubleAsync(new Order("pear", 2)).AsTask().WaitAsync(Bound));
        var weak = WeakContext(serve.GetDeployment("SwapModel", "packed").Replicas.Single().LoadContext);

        await serve.DeleteAsync("packed").WaitAsync(Bound);

        await CollectAsync(weak);
        Assert.False(weak.IsAlive, "the isolated context was not unloaded: something MessagePack cached still holds its types");
    }

    [Fact]
    public async Task One_deployment_can_use_MessagePack_while_the_host_uses_JSON()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var json = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V1"))),
            new RunOptions { Name = "json", RoutePrefix = "/json" }).WaitAsync(Bound);
        var packed = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o =>
                o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2")).WithBoundaryFormat(BoundaryFormat.MessagePack)),
            new RunOptions { Name = "packed", RoutePrefix = "/packed" }).WaitAsync(Bound);
        var withNaN = Sample() with { Vector = [float.NaN, 1] };

        // JSON cannot write NaN; MessagePack writes the float's bytes.
        var error = await Assert.ThrowsAsync<ArgumentException>(() => json.EchoAsync(withNaN).AsTask().WaitAsync(Bound));
        Assert.Contains("JSON", error.Message);
        var back = await packed.EchoAsync(withNaN).AsTask().WaitAsync(Bound);
        Assert.True(float.IsNaN(back.Vector[0]));
        Assert.Equal("f1@v2", back.Id);
        Assert.EndsWith("over MessagePack", serve.GetDeployment("SwapModel", "packed").Options.RuntimeEnv.ToString());
    }

    [Fact]
    public async Task User_config_reaches_a_MessagePack_deployment_on_a_JSON_host_and_its_context_still_unloads()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var handle = await serve.RunAsync(IsoConfigured.Bind().WithOptions(o =>
        {
            o.RuntimeEnv = RuntimeEnv.Isolated().WithBoundaryFormat(BoundaryFormat.MessagePack);
            o.UserConfig = new Greeting("hello");
        }), new RunOptions { Name = "configured", RoutePrefix = "/configured" }).WaitAsync(Bound);

        Assert.StartsWith("hello (Serve.Tests in configured/IsoConfigured@", await handle.CallAsync().AsTask().WaitAsync(Bound));
        var weak = WeakContext(serve.GetDeployment("IsoConfigured", "configured").Replicas.Single().LoadContext);

        await serve.DeleteAsync("configured").WaitAsync(Bound);

        await CollectAsync(weak);
        Assert.False(weak.IsAlive, "the MessagePack deployment's context was not unloaded");
    }

    [Fact]
    public void WithBoundaryFormat_is_refused_for_a_shared_deployment()
    {
        var error = Assert.Throws<InvalidOperationException>(() => RuntimeEnv.Shared.WithBoundaryFormat(BoundaryFormat.MessagePack));
        Assert.Contains("Isolated() and FromDirectory", error.Message);
        Assert.NotEqual(RuntimeEnv.Isolated(), RuntimeEnv.Isolated().WithBoundaryFormat(BoundaryFormat.MessagePack));
        Assert.Equal(RuntimeEnv.Isolated("A").WithBoundaryFormat(BoundaryFormat.Json), RuntimeEnv.Isolated("A").WithBoundaryFormat(BoundaryFormat.Json));
    }

    [Theory]
    [InlineData("messagepack", BoundaryFormat.MessagePack)]
    [InlineData("json", BoundaryFormat.Json)]
    [InlineData("host", BoundaryFormat.HostDefault)]
    public void A_config_file_chooses_the_serializer_in_runtime_env(string value, BoundaryFormat format)
    {
        var path = WriteConfig($"{{ isolated: true, serializer: {value} }}");

        var config = Config.ServeConfigLoader.Load(path);

        var env = config.Applications.Single().Application.GetOptions().RuntimeEnv;
        Assert.Equal(RuntimeEnvKind.Isolated, env.Kind);
        Assert.Equal(format, env.BoundaryFormat);
    }

    [Fact]
    public void A_config_file_with_an_unknown_serializer_names_the_key_and_the_choices()
    {
        var path = WriteConfig("{ isolated: true, serializer: protobuf }");

        var error = Assert.Throws<Config.ServeConfigException>(() => Config.ServeConfigLoader.Load(path));

        Assert.Contains("runtime_env.serializer", error.Message);
        Assert.Contains("expected 'json', 'messagepack' or 'host'", error.Message);
        Assert.Contains("\"protobuf\"", error.Message);
    }

    [Fact]
    public async Task Bad_input_from_an_isolated_exception_type_crosses_as_an_InvalidInputException()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        var model = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2"))),
            new RunOptions { Name = "checked", RoutePrefix = "/checked" }).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<InvalidInputException>(() => model.CheckAsync(0).AsTask().WaitAsync(Bound));
        Assert.Equal("quantity 0 is not positive; send 1 or more.", error.Message);
        Assert.Equal("SwapModel.BadOrderException", Assert.IsType<BoundaryException>(error.InnerException).ExceptionType);

        // The HTTP ingress maps InvalidInputException to 400 wherever it comes from (HttpErrorMapper; Serve.Onnx.Tests checks the answer).
    }

    private static string WriteConfig(string runtimeEnv)
    {
        var dir = Directory.CreateTempSubdirectory("serve-messagepack-config-").FullName;
        var path = Path.Combine(dir, "serve.yaml");
        File.WriteAllText(path, $"""
            applications:
              - import: {typeof(IsolationApps).Assembly.Location.Replace('\\', '/')}:Serve.Tests.IsolationApps.Swap
                deployments:
                  - name: SwapModel
                    runtime_env: {runtimeEnv}
            """);
        return path;
    }

    private static async Task CollectAsync(WeakReference weak)
    {
        for (var i = 0; i < 200 && weak.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(10);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference WeakContext(string name) => new(AssemblyLoadContext.All.Single(c => c.Name == name));
}
