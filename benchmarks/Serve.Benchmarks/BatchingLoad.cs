using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace Serve.Benchmarks;

/// <summary>
/// The batching benchmark (<c>--batching</c>): a closed-loop load test, not a BenchmarkDotNet class, because it
/// measures throughput and per-call latency percentiles under concurrent load. <see cref="MatMulModel"/> runs on one
/// replica per case; <c>--callers</c> tasks each call <c>PredictAsync</c> in a loop. The cases, <c>MaxBatchSize = 1</c>
/// and <c>MaxBatchSize = 32</c> (same host, same model, same callers), alternate for <c>--rounds</c> rounds, after the
/// model's own cost at batch 1 and 32 (direct calls, no Serve).
/// </summary>
internal static class BatchingLoad
{
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        var dim = Option(args, "--dim", 4096);
        var callers = Option(args, "--callers", 64);
        var seconds = Option(args, "--seconds", 5);
        var rounds = Option(args, "--rounds", 3);
        var warmup = Option(args, "--warmup", 3);
        var wait = Option(args, "--wait-ms", 2);
        var concurrent = Option(args, "--concurrent-batches", 1);

        output.WriteLine($"batching benchmark: Dim = {dim} (W = {(long)dim * dim * 4 / (1024 * 1024)} MB), {callers} callers, {warmup} s warm-up, then {rounds} rounds of {seconds} s per case, BatchWaitTimeoutMs = {wait}, MaxConcurrentBatches = {concurrent}");
        output.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs, .NET {Environment.Version}, load average {LoadAverage()}");

        // The model alone: cost of one batch of 1 and of 32.
        var rows = MatMul.CreateWeights(dim, seed: 42);
        var inputs = Enumerable.Range(0, 32).Select(i => MatMul.CreateInput(dim, i)).ToArray();
        var one = Direct(rows, inputs[..1]);
        var full = Direct(rows, inputs);
        output.WriteLine($"direct: batch 1 = {one:F3} ms ({1000 / one:F0} items/s), batch 32 = {full:F3} ms ({32 * 1000 / full:F0} items/s); " +
                         $"a batch of 32 costs {full / one:F1}x a batch of 1");
        if (Vector512.IsHardwareAccelerated && dim % 16 == 0)
        {
            // Not what the model runs: the fastest one-input kernel we have, for an honest ceiling (RESULTS.md, Batching).
            var panels = MatMul.PackPanels(rows);
            var packedY = MatMul.PanelGemv(panels, inputs[0]);
            var check = MatMul.Multiply(rows, inputs[..1])[0];
            for (var j = 0; j < dim; j++)
            {
                if (Math.Abs(packedY[j] - check[j]) > 1e-3f * (1 + Math.Abs(check[j])))
                {
                    output.WriteLine($"FAIL: the packed reference GEMV gives {packedY[j]} for output {j}, the model {check[j]}");
                    return 1;
                }
            }
            var packed = Measure(() => MatMul.PanelGemv(panels, inputs[0]));
            output.WriteLine($"reference (not the model): one input through 16-row packed panels = {packed:F3} ms; against that, a batch of 32 could gain at most {32 * packed / full:F1}x");
        }

        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handles = new Dictionary<int, MatMulModelHandle>();
        foreach (var batch in new[] { 1, 32 })
        {
            var app = MatMulModel.Bind(dim).WithOptions(o =>
            {
                o.Name = "MatMul" + batch;
                o.MaxOngoingRequests = callers;
                o.UserConfig = new MatMulConfig(batch, wait, concurrent);
            });
            var handle = handles[batch] = await serve.RunAsync(app, new RunOptions { Name = "batch" + batch, RoutePrefix = "/batch" + batch });
            // Served results equal the direct product (batched or not; the kernels sum in different orders).
            var served = await Task.WhenAll(inputs.Select(x => handle.PredictAsync(x).AsTask()));
            var direct = MatMul.Multiply(rows, inputs[..1]);
            for (var b = 0; b < inputs.Length; b++)
            {
                var expected = b == 0 ? direct[0] : MatMul.Multiply(rows, [inputs[b]])[0];
                for (var j = 0; j < dim; j++)
                {
                    if (Math.Abs(served[b][j] - expected[j]) > 1e-3f * (1 + Math.Abs(expected[j])))
                    {
                        output.WriteLine($"FAIL: MaxBatchSize = {batch}: output {j} of input {b} is {served[b][j]}, the direct product gives {expected[j]}");
                        return 1;
                    }
                }
            }
            await LoadAsync(handle, inputs, callers, TimeSpan.FromSeconds(warmup));
        }

        // Rounds alternate the two cases, so a slow spell of this shared machine hits both alike.
        var measured = new Dictionary<int, List<Result>> { [1] = [], [32] = [] };
        for (var round = 1; round <= rounds; round++)
        {
            foreach (var batch in new[] { 1, 32 })
            {
                MatMulModel.TakeBatchStats();
                var result = await LoadAsync(handles[batch], inputs, callers, TimeSpan.FromSeconds(seconds));
                var (batches, items) = MatMulModel.TakeBatchStats();
                measured[batch].Add(result);
                output.WriteLine($"round {round}, MaxBatchSize = {batch,2}: {result.Calls} calls in {result.Elapsed.TotalSeconds:F2} s = {result.Throughput:F0} calls/s; " +
                                 $"latency p50 = {result.P50:F1} ms, p99 = {result.P99:F1} ms; mean batch {(double)items / Math.Max(1, batches):F1} (load average {LoadAverage()})");
            }
            output.WriteLine($"round {round}: throughput, MaxBatchSize 32 vs 1: {measured[32][^1].Throughput / measured[1][^1].Throughput:F1}x");
        }
        foreach (var batch in new[] { 1, 32 })
        {
            var all = measured[batch];
            var latencies = all.SelectMany(r => r.Latencies).Order().ToArray();
            var calls = all.Sum(r => r.Calls);
            var elapsed = all.Sum(r => r.Elapsed.TotalSeconds);
            output.WriteLine($"all rounds, MaxBatchSize = {batch,2}: {calls} calls in {elapsed:F1} s = {calls / elapsed:F0} calls/s; " +
                             $"latency p50 = {Percentile(latencies, 0.50):F1} ms, p99 = {Percentile(latencies, 0.99):F1} ms, max = {latencies[^1]:F1} ms");
        }
        var speedup = measured[32].Sum(r => r.Calls) / measured[32].Sum(r => r.Elapsed.TotalSeconds)
                      / (measured[1].Sum(r => r.Calls) / measured[1].Sum(r => r.Elapsed.TotalSeconds));
        output.WriteLine($"throughput, MaxBatchSize 32 vs 1: {speedup:F1}x over all rounds (goal: at least 8x; the model alone allows {32 * one / full:F1}x)");
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static double Direct(float[][] rows, float[][] inputs) => Measure(() => MatMul.Multiply(rows, inputs));

    /// <summary>Mean milliseconds per run of <paramref name="run"/> over at least 2 s (and 3 runs), after one warm-up run.</summary>
    private static double Measure(Action run)
    {
        run();
        var runs = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(2) || runs < 3)
        {
            run();
            runs++;
        }
        return watch.Elapsed.TotalMilliseconds / runs;
    }

    private sealed record Result(long Calls, TimeSpan Elapsed, double P50, double P99, double Max, double[] Latencies)
    {
        public double Throughput => Calls / Elapsed.TotalSeconds;
    }

    private static async Task<Result> LoadAsync(MatMulModelHandle handle, float[][] inputs, int callers, TimeSpan duration)
    {
        var stop = Stopwatch.StartNew();
        var latencies = new List<double>[callers];
        var tasks = new Task[callers];
        for (var c = 0; c < callers; c++)
        {
            var mine = latencies[c] = new List<double>(4096);
            var input = inputs[c % inputs.Length];
            tasks[c] = Task.Run(async () =>
            {
                while (stop.Elapsed < duration)
                {
                    var start = Stopwatch.GetTimestamp();
                    await handle.PredictAsync(input).ConfigureAwait(false);
                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            });
        }
        await Task.WhenAll(tasks);
        var elapsed = stop.Elapsed;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new Result(all.Length, elapsed, Percentile(all, 0.50), Percentile(all, 0.99), all[^1], all);
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var value) ? value : fallback;
    }
}
