using System.Collections.Concurrent;
using System.Diagnostics;

namespace Serve.Benchmarks;

/// <summary>A deployment whose calls take 50 ms of waiting (not CPU), so load is concurrency, not cores.</summary>
[Deployment(MaxOngoingRequests = 100)]
public partial class Sleeper(ReplicaContext context)
{
    /// <summary>Waits 50 ms and names the replica that served the call.</summary>
    public async Task<string> Call()
    {
        await Task.Delay(50);
        return context.ReplicaId;
    }
}

/// <summary>
/// The autoscaling reaction scenario (issue 6): one replica idles, then 8 callers start calling in a loop (a step from
/// 0 to 8 concurrent calls); with <c>TargetOngoingRequests = 2</c> the autoscaler should go to 4 replicas. Measures the
/// time from the step until 4 replicas run and each has answered a call, against the goal UpscaleDelay + 1 s.
/// <c>dotnet run -c Release --project benchmarks/Serve.Benchmarks -- --autoscale-step</c>.
/// </summary>
public static class AutoscaleStep
{
    public static async Task<int> RunAsync(TextWriter output, int runs = 3)
    {
        var options = new AutoscalingOptions
        {
            MinReplicas = 1,
            MaxReplicas = 4,
            TargetOngoingRequests = 2,
            UpscaleDelay = TimeSpan.FromSeconds(2),
            DownscaleDelay = TimeSpan.FromMinutes(10),
            MetricsInterval = TimeSpan.FromMilliseconds(250),
            LookBackPeriod = TimeSpan.FromSeconds(1),
        };
        var goal = options.UpscaleDelay + TimeSpan.FromSeconds(1);
        output.WriteLine($"autoscale step: 0 -> 8 concurrent 50 ms calls, target 2 per replica, 1 -> 4 replicas; UpscaleDelay {options.UpscaleDelay.TotalSeconds} s, " +
                         $"MetricsInterval {options.MetricsInterval.TotalMilliseconds} ms, LookBackPeriod {options.LookBackPeriod.TotalSeconds} s; goal {goal.TotalSeconds} s");
        var failures = 0;
        for (var run = 1; run <= runs; run++)
        {
            await using var host = await ServeHost.StartAsync(o => o.Http.Enabled = false);
            var handle = await host.RunAsync(Sleeper.Bind().WithOptions(o => o.Autoscaling = options));
            var served = new ConcurrentDictionary<string, long>();
            using var stop = new CancellationTokenSource();
            var clock = Stopwatch.StartNew();
            var callers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                    served.TryAdd(await handle.CallAsync(), clock.ElapsedTicks);
            })).ToArray();
            TimeSpan? reached = null;
            while (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                var running = host.GetDeployment("Sleeper").Replicas.Where(r => r.State == ReplicaState.Running).Select(r => r.ReplicaId).ToArray();
                if (running.Length == 4 && running.All(served.ContainsKey))
                {
                    reached = TimeSpan.FromTicks((long)(running.Max(id => served[id]) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
                    break;
                }
                await Task.Delay(10);
            }
            await stop.CancelAsync();
            await Task.WhenAll(callers);
            var met = reached is { } t && t <= goal;
            failures += met ? 0 : 1;
            output.WriteLine(reached is { } r
                ? $"run {run}: 4 replicas serving {r.TotalSeconds:0.000} s after the step ({(met ? "within" : "OVER")} the {goal.TotalSeconds} s goal)"
                : $"run {run}: did not reach 4 serving replicas within 30 s");
        }
        return failures == 0 ? 0 : 1;
    }
}
