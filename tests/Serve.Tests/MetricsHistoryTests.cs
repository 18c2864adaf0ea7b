using System.Diagnostics;
using System.Diagnostics.Metrics;
using Serve.Observability;

namespace Serve.Tests;

/// <summary>The dashboard's per-deployment history, on a meter of its own with a clock the test moves.</summary>
public sealed class MetricsHistoryTests
{
    private long _now = Stopwatch.Frequency * 1000;

    private void Advance(TimeSpan by) => _now += (long)(by.TotalSeconds * Stopwatch.Frequency);

    [Fact]
    public void Calls_land_in_five_second_slots_with_rates_errors_and_percentiles_and_old_slots_roll_off()
    {
        // Not named "Serve": other tests listen to that name, and MetricsHistory listens to this meter object only.
        using var meter = new Meter("Serve.Tests.MetricsHistory");
        var latency = meter.CreateHistogram<double>("serve.deployment.processing_latency", "ms");
        var errors = meter.CreateCounter<long>("serve.deployment.errors");
        using var history = new MetricsHistory(meter, clock: () => _now);
        var tags = ServeMetrics.ReplicaTags("app", "Model", "Model#0001");
        var other = ServeMetrics.ReplicaTags("app", "Other", "Other#0001");

        // Slot 1: 100 calls of 1..100 ms, 10 of them failed. Another deployment's calls stay out of Model's numbers.
        for (var i = 1; i <= 100; i++)
            latency.Record(i, in tags);
        errors.Add(10, in tags);
        latency.Record(5000, in other);
        Advance(TimeSpan.FromSeconds(5));
        // Slot 2 (still filling, 2 s in): 4 calls of 1 ms.
        for (var i = 0; i < 4; i++)
            latency.Record(1, in tags);
        Advance(TimeSpan.FromSeconds(2));

        var model = history.Read("app", "Model");

        Assert.Equal(MetricsHistory.SlotCount, model.RequestsPerSecond.Length);
        Assert.Equal(20.0, model.RequestsPerSecond[^2]);  // 100 calls in 5 s
        Assert.Equal(2.0, model.RequestsPerSecond[^1]);   // 4 calls in the 2 s so far
        Assert.Equal(0.1, model.ErrorRate[^2]);
        Assert.Equal(0.0, model.ErrorRate[^1]);
        // Buckets are 20% apart: the estimates are within 20% above the exact 50 and 99 ms, never above the slowest call.
        Assert.InRange(model.P50[^2]!.Value, 50, 60);
        Assert.InRange(model.P99[^2]!.Value, 99, 100);
        Assert.Null(model.P50[0]);
        Assert.Equal(104, model.LastMinute.Requests);
        Assert.Equal(10.0 / 104, model.LastMinute.ErrorRate, 6);
        Assert.InRange(model.LastMinute.P99!.Value, 99, 100);
        Assert.Equal(5000.0, history.Read("app", "Other").P50[^2]);
        Assert.Equal(0, history.Read("app", "Unknown").LastMinute.Requests);

        // Five minutes later both slots have rolled off the ring.
        Advance(TimeSpan.FromMinutes(5));
        var later = history.Read("app", "Model");
        Assert.All(later.RequestsPerSecond, r => Assert.Equal(0.0, r));
        Assert.Equal(0, later.LastMinute.Requests);
        Assert.Null(later.LastMinute.P50);
    }
}
