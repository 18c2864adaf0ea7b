using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Serve.Benchmarks;

/// <summary>A request of about 1 KB as JSON: a type of this assembly, so an isolated copy must serialize it.</summary>
public sealed record Payload(string Text, int[] Values);

/// <summary>The deployment the isolation benchmarks call.</summary>
[Deployment(MaxOngoingRequests = 64)]
public partial class Measurer
{
    /// <summary>Shared types only: crosses an isolation boundary by reference.</summary>
    public int Call(int x) => x + 1;

    /// <summary>A type the isolated context loads separately: crosses serialized.</summary>
    public int Measure(Payload payload) => payload.Text.Length + payload.Values.Length;
}

/// <summary>
/// What isolation costs (issue 4), side by side with the same call in the shared default context:
/// <list type="bullet">
/// <item>1-Shared-types: <c>Call(int)</c>; the isolated replica gets its arguments by reference (goal: within 100 ns of shared).</item>
/// <item>2-1KB-serialized: <c>Measure(Payload)</c> with a ~1 KB payload; the isolated replica receives a JSON copy (goal: under 5 µs).</item>
/// <item>3-Replica-start: redeploying a one-replica deployment with a new version (a rolling update: start the new
/// replica, stop the old): in the shared context vs in a fresh isolated context each time, whose difference is the
/// context's cost — create, load, register, plan the boundary, and unload the old one (goal: under 20 ms).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class IsolationBenchmarks
{
    public const string SharedTypes = "1-Shared-types";
    public const string Serialized = "2-1KB-serialized";
    public const string Start = "3-Replica-start";

    public static readonly Payload OneKilobyte = new(new string('x', 900), [.. Enumerable.Range(0, 30)]);
    public const int PayloadSize = 930;

    private ServeHost _host = null!;
    private MeasurerHandle _shared = null!;
    private MeasurerHandle _isolated = null!;
    private int _version;

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
        // Not about resources: room for every replica whatever the core count (docs/resources.md).
        _host = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        _shared = await _host.RunAsync(Measurer.Bind().WithOptions(o => o.Name = "Shared"), new RunOptions { Name = "shared", RoutePrefix = "/s" });
        _isolated = await _host.RunAsync(Measurer.Bind().WithOptions(o => { o.Name = "Isolated"; o.RuntimeEnv = RuntimeEnv.Isolated(); }),
            new RunOptions { Name = "isolated", RoutePrefix = "/i" });
        if (await _isolated.MeasureAsync(OneKilobyte) != PayloadSize || System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(OneKilobyte).Length is < 900 or > 1200)
            throw new InvalidOperationException("the isolated Measurer did not answer as expected, or the payload is not about 1 KB");
    }

    [GlobalCleanup]
    public void GlobalCleanup() => _host.ShutdownAsync().GetAwaiter().GetResult();

    [Benchmark(Baseline = true), BenchmarkCategory(SharedTypes), ExpectedResult(HandleBenchmarks.Argument + 1)]
    public ValueTask<int> Shared_Call() => _shared.CallAsync(HandleBenchmarks.Argument);

    [Benchmark, BenchmarkCategory(SharedTypes), ExpectedResult(HandleBenchmarks.Argument + 1)]
    public ValueTask<int> Isolated_Call() => _isolated.CallAsync(HandleBenchmarks.Argument);

    [Benchmark(Baseline = true), BenchmarkCategory(Serialized), ExpectedResult(PayloadSize)]
    public ValueTask<int> Shared_Measure1KB() => _shared.MeasureAsync(OneKilobyte);

    [Benchmark, BenchmarkCategory(Serialized), ExpectedResult(PayloadSize)]
    public ValueTask<int> Isolated_Measure1KB() => _isolated.MeasureAsync(OneKilobyte);

    [Benchmark(Baseline = true), BenchmarkCategory(Start), ExpectedResult(HandleBenchmarks.Argument + 1)]
    public Task<MeasurerHandle> Shared_RollOneReplica() => Roll("RollShared", RuntimeEnv.Shared);

    [Benchmark, BenchmarkCategory(Start), ExpectedResult(HandleBenchmarks.Argument + 1)]
    public Task<MeasurerHandle> Isolated_RollOneReplicaInFreshContext() => Roll("RollIsolated", RuntimeEnv.Isolated());

    private Task<MeasurerHandle> Roll(string name, RuntimeEnv env)
    {
        var version = (++_version).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return _host.RunAsync(Measurer.Bind().WithOptions(o => { o.Name = name; o.Version = version; o.RuntimeEnv = env; }),
            new RunOptions { Name = name, RoutePrefix = "/" + name });
    }
}
