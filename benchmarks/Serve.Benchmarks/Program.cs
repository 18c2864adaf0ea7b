using BenchmarkDotNet.Running;

namespace Serve.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/Serve.Benchmarks -- --filter '*'</c> runs every benchmark.
/// Before BenchmarkDotNet starts, every benchmark runs once and its result is checked (see <see cref="Smoke"/>);
/// <c>--smoke</c> runs only that check, <c>--no-smoke</c> skips it; <c>--autoscale-step</c> runs the autoscaling
/// reaction scenario (<see cref="AutoscaleStep"/>), <c>--batching</c> the batching load test
/// (<see cref="BatchingLoad"/>) and <c>--gpu-streams</c> the GPU stream overlap program (<see cref="GpuStreams"/>)
/// instead. Other arguments go to BenchmarkDotNet.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Contains("--autoscale-step"))
            return await AutoscaleStep.RunAsync(Console.Out);
        if (args.Contains("--batching"))
            return await BatchingLoad.RunAsync(args, Console.Out);
        if (args.Contains("--gpu-streams"))
            return await GpuStreams.RunAsync(Console.Out); // needs a GPU; see GpuStreams and RESULTS.md
        var smokeOnly = args.Contains("--smoke");
        var skipSmoke = args.Contains("--no-smoke");
        var rest = args.Where(a => a is not "--smoke" and not "--no-smoke").ToArray();

        if (!skipSmoke && !await Smoke.RunAsync(Console.Out))
            return 1;
        if (smokeOnly)
            return 0;

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest).ToArray();
        var failed = summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success));
        return failed ? 1 : 0;
    }
}
