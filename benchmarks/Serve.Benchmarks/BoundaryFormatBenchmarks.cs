using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Serve.Benchmarks;

/// <summary>A sentence embedding as a type of this assembly: an isolated copy must serialize it.</summary>
public sealed record EmbeddingPayload(string Id, float[] Vector);

/// <summary>The deployment the boundary-format benchmarks call, isolated twice: over JSON and over MessagePack.</summary>
[Deployment(MaxOngoingRequests = 64)]
public partial class FormatMeasurer
{
    /// <summary>A ~1 KB record (<see cref="IsolationBenchmarks.OneKilobyte"/>).</summary>
    public int Measure(Payload payload) => payload.Text.Length + payload.Values.Length;

    /// <summary>A 384-float vector inside a record (all-MiniLM-L6-v2's embedding size).</summary>
    public int Dimensions(EmbeddingPayload embedding) => embedding.Vector.Length;
}

/// <summary>
/// One isolated call with a ~1 KB record and with a 384-float vector, JSON (<c>JsonBoundarySerializer</c>, the
/// default) side by side with MessagePack (<c>RuntimeEnv.Isolated().WithBoundaryFormat(BoundaryFormat.MessagePack)</c>)
/// in one host and one run (issue 14).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class BoundaryFormatBenchmarks
{
    public const string Record = "1-Record-1KB";
    public const string Vector = "2-Vector-384-floats";

    public static readonly EmbeddingPayload Embedding = new("sentence-1", [.. Enumerable.Range(0, 384).Select(i => MathF.Sin(i) / 8)]);

    private ServeHost _host = null!;
    private FormatMeasurerHandle _json = null!;
    private FormatMeasurerHandle _messagePack = null!;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(8).WithId("Short"));
            AddColumn(StatisticColumn.Min, StatisticColumn.Median);
        }
    }

    [GlobalSetup]
    public void GlobalSetup() => GlobalSetupAsync().GetAwaiter().GetResult();

    private async Task GlobalSetupAsync()
    {
        _host = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        _json = await _host.RunAsync(FormatMeasurer.Bind().WithOptions(o => { o.Name = "Json"; o.RuntimeEnv = RuntimeEnv.Isolated(); }),
            new RunOptions { Name = "json", RoutePrefix = "/j" });
        _messagePack = await _host.RunAsync(FormatMeasurer.Bind().WithOptions(o =>
            {
                o.Name = "MessagePack";
                o.RuntimeEnv = RuntimeEnv.Isolated().WithBoundaryFormat(BoundaryFormat.MessagePack);
            }),
            new RunOptions { Name = "messagepack", RoutePrefix = "/m" });
    }

    [GlobalCleanup]
    public void GlobalCleanup() => _host.ShutdownAsync().GetAwaiter().GetResult();

    [Benchmark(Baseline = true), BenchmarkCategory(Record), ExpectedResult(IsolationBenchmarks.PayloadSize)]
    public ValueTask<int> Json_Record1KB() => _json.MeasureAsync(IsolationBenchmarks.OneKilobyte);

    [Benchmark, BenchmarkCategory(Record), ExpectedResult(IsolationBenchmarks.PayloadSize)]
    public ValueTask<int> MessagePack_Record1KB() => _messagePack.MeasureAsync(IsolationBenchmarks.OneKilobyte);

    [Benchmark(Baseline = true), BenchmarkCategory(Vector), ExpectedResult(384)]
    public ValueTask<int> Json_Vector384() => _json.DimensionsAsync(Embedding);

    [Benchmark, BenchmarkCategory(Vector), ExpectedResult(384)]
    public ValueTask<int> MessagePack_Vector384() => _messagePack.DimensionsAsync(Embedding);
}
