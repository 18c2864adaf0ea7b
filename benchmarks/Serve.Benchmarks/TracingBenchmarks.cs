using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Serve.Benchmarks;

/// <summary>
/// What tracing costs a handle call (issue 15): the same one-replica call with nobody listening to Serve's
/// <see cref="ActivitySource"/> (it must stay at the plain handle call's cost and allocate nothing), and with a listener
/// that samples and records every span (what a service exporting traces pays). The listener lives in this class's
/// benchmark process only.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class TracingBenchmarks
{
    private ServeHost _host = null!;
    private AdderHandle _one = null!;
    private ActivityListener? _listener;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithLaunchCount(2).WithWarmupCount(3).WithIterationCount(8).WithId("Short"));
            AddColumn(StatisticColumn.Min, StatisticColumn.Median);
        }
    }

    /// <summary>Which of the two: nobody listens, or a listener records every span.</summary>
    [Params(false, true)]
    public bool Listening { get; set; }

    [GlobalSetup]
    public void GlobalSetup() => GlobalSetupAsync().GetAwaiter().GetResult();

    private async Task GlobalSetupAsync()
    {
        if (Listening)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == ServeDiagnostics.ActivitySourceName,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            };
            ActivitySource.AddActivityListener(_listener);
        }
        _host = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        _one = await _host.RunAsync(Adder.Bind(), new RunOptions { Name = "traced" });
        var result = await _one.CallAsync(HandleBenchmarks.Argument);
        if (result != HandleBenchmarks.Argument + 1)
            throw new InvalidOperationException($"traced handle(1).CallAsync returned {result}, expected {HandleBenchmarks.Argument + 1}.");
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _host.ShutdownAsync().GetAwaiter().GetResult();
        _listener?.Dispose();
    }

    [Benchmark, ExpectedResult(HandleBenchmarks.Argument + 1)]
    public ValueTask<int> Handle_CallAsync() => _one.CallAsync(HandleBenchmarks.Argument);
}
