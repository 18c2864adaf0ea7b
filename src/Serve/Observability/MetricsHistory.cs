using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Serve.Observability;

/// <summary>
/// Requests, errors and latency of each deployment over the last minutes, for the dashboard's charts: a
/// <see cref="MeterListener"/> on one host's <c>Serve</c> meter adds each finished call
/// (<c>serve.deployment.processing_latency</c>, <c>serve.deployment.errors</c>) to a ring of time slots per deployment.
/// Latencies go into geometric buckets (20% apart), so p50 and p99 are estimates within a bucket.
/// </summary>
internal sealed class MetricsHistory : IDisposable
{
    public static readonly TimeSpan DefaultSlot = TimeSpan.FromSeconds(5);
    public const int SlotCount = 60;

    private const double FirstBoundMs = 0.05;
    private const double Growth = 1.2;
    private const int BucketCount = 80; // 0.05 ms × 1.2^79 ≈ 90 s; slower calls count in the last bucket.

    private static readonly double s_logGrowth = Math.Log(Growth);
    private static readonly object s_latency = "latency";
    private static readonly object s_errors = "errors";

    private readonly Meter _meter;
    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<(string Application, string Deployment), Series> _series = new();
    private readonly long _slotTicks;
    private readonly Func<long> _clock;

    public MetricsHistory(Meter meter, TimeSpan? slot = null, Func<long>? clock = null)
    {
        _meter = meter;
        Slot = slot ?? DefaultSlot;
        _slotTicks = Math.Max(1, (long)(Slot.TotalSeconds * Stopwatch.Frequency));
        _clock = clock ?? Stopwatch.GetTimestamp;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (!ReferenceEquals(instrument.Meter, _meter))
                    return;
                if (instrument.Name == "serve.deployment.processing_latency")
                    listener.EnableMeasurementEvents(instrument, s_latency);
                else if (instrument.Name == "serve.deployment.errors")
                    listener.EnableMeasurementEvents(instrument, s_errors);
            },
        };
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) =>
        {
            if (ReferenceEquals(state, s_latency) && Find(tags) is { } series)
                series.AddCall(SlotIndex(), value);
        });
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) =>
        {
            if (ReferenceEquals(state, s_errors) && Find(tags) is { } series)
                series.AddErrors(SlotIndex(), value);
        });
        _listener.Start();
    }

    /// <summary>The length of one slot.</summary>
    public TimeSpan Slot { get; }

    private long SlotIndex() => _clock() / _slotTicks;

    private Series? Find(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? application = null, deployment = null;
        foreach (var tag in tags)
        {
            if (tag.Key == ServeMetrics.ApplicationTag)
                application = tag.Value as string;
            else if (tag.Key == ServeMetrics.DeploymentTag)
                deployment = tag.Value as string;
        }
        if (application is null || deployment is null)
            return null;
        return _series.TryGetValue((application, deployment), out var found)
            ? found
            : _series.GetOrAdd((application, deployment), static _ => new Series());
    }

    /// <summary>The deployment's last <see cref="SlotCount"/> slots, oldest first (the last one is still filling).</summary>
    public DeploymentHistory Read(string application, string deployment)
    {
        var now = _clock();
        var current = now / _slotTicks;
        // The slot still filling is a rate over the time it has run so far (at least a second, so one call is not a spike).
        var currentSeconds = Math.Max(1.0, (double)(now - current * _slotTicks) / Stopwatch.Frequency);
        var history = new DeploymentHistory(Slot.TotalSeconds, SlotCount);
        if (!_series.TryGetValue((application, deployment), out var series))
            return history;
        series.Read(current, Slot.TotalSeconds, currentSeconds, history);
        return history;
    }

    public void Dispose() => _listener.Dispose();

    private static int Bucket(double milliseconds)
    {
        if (!(milliseconds > FirstBoundMs))
            return 0;
        var index = (int)Math.Ceiling(Math.Log(milliseconds / FirstBoundMs) / s_logGrowth);
        return Math.Min(index, BucketCount - 1);
    }

    private static double BucketBound(int bucket) => FirstBoundMs * Math.Pow(Growth, bucket);

    private sealed class Series
    {
        private readonly Lock _lock = new();
        private readonly long[] _index = new long[SlotCount];
        private readonly long[] _calls = new long[SlotCount];
        private readonly long[] _errors = new long[SlotCount];
        private readonly double[] _max = new double[SlotCount];
        private readonly int[,] _buckets = new int[SlotCount, BucketCount];

        public Series() => Array.Fill(_index, -1);

        public void AddCall(long slot, double milliseconds)
        {
            var bucket = Bucket(milliseconds);
            lock (_lock)
            {
                var i = Claim(slot);
                _calls[i]++;
                _buckets[i, bucket]++;
                if (milliseconds > _max[i])
                    _max[i] = milliseconds;
            }
        }

        public void AddErrors(long slot, long count)
        {
            lock (_lock)
                _errors[Claim(slot)] += count;
        }

        private int Claim(long slot)
        {
            var i = (int)(slot % SlotCount);
            if (_index[i] != slot)
            {
                _index[i] = slot;
                _calls[i] = 0;
                _errors[i] = 0;
                _max[i] = 0;
                for (var b = 0; b < BucketCount; b++)
                    _buckets[i, b] = 0;
            }
            return i;
        }

        public void Read(long current, double slotSeconds, double currentSeconds, DeploymentHistory history)
        {
            var merged = new long[BucketCount];
            var scratch = new long[BucketCount];
            long totalCalls = 0, totalErrors = 0;
            double totalMax = 0;
            var lastMinute = (int)Math.Ceiling(60 / slotSeconds);
            lock (_lock)
            {
                for (var k = 0; k < SlotCount; k++)
                {
                    var slot = current - (SlotCount - 1) + k;
                    var i = (int)(((slot % SlotCount) + SlotCount) % SlotCount);
                    if (slot < 0 || _index[i] != slot || _calls[i] == 0)
                        continue;
                    var seconds = slot == current ? currentSeconds : slotSeconds;
                    history.RequestsPerSecond[k] = _calls[i] / seconds;
                    history.ErrorRate[k] = Math.Min(1.0, (double)_errors[i] / _calls[i]);
                    for (var b = 0; b < BucketCount; b++)
                        scratch[b] = _buckets[i, b];
                    history.P50[k] = Estimate(scratch, _calls[i], 0.50, _max[i]);
                    history.P99[k] = Estimate(scratch, _calls[i], 0.99, _max[i]);
                    if (k >= SlotCount - lastMinute)
                    {
                        totalCalls += _calls[i];
                        totalErrors += _errors[i];
                        totalMax = Math.Max(totalMax, _max[i]);
                        for (var b = 0; b < BucketCount; b++)
                            merged[b] += _buckets[i, b];
                    }
                }
            }
            var window = (lastMinute - 1) * slotSeconds + currentSeconds;
            history.LastMinute = new HistorySummary(totalCalls, totalCalls / window, totalCalls == 0 ? 0 : Math.Min(1.0, (double)totalErrors / totalCalls),
                totalCalls == 0 ? null : Estimate(merged, totalCalls, 0.50, totalMax),
                totalCalls == 0 ? null : Estimate(merged, totalCalls, 0.99, totalMax));
        }

        private static double Estimate(long[] counts, long total, double q, double max)
        {
            var rank = Math.Max(1, (long)Math.Ceiling(q * total));
            long seen = 0;
            for (var b = 0; b < BucketCount; b++)
            {
                seen += counts[b];
                if (seen >= rank)
                    return Math.Round(Math.Min(BucketBound(b), max), 3);
            }
            return Math.Round(max, 3);
        }
    }
}

/// <summary>One deployment's slots, oldest first; slots without calls hold 0 (rates) or <c>null</c> (latencies).</summary>
internal sealed class DeploymentHistory(double slotSeconds, int slots)
{
    public double SlotSeconds { get; } = slotSeconds;
    public double[] RequestsPerSecond { get; } = new double[slots];
    public double[] ErrorRate { get; } = new double[slots];
    public double?[] P50 { get; } = new double?[slots];
    public double?[] P99 { get; } = new double?[slots];
    public HistorySummary LastMinute { get; set; } = new(0, 0, 0, null, null);
}

/// <summary>Totals over the last minute.</summary>
internal sealed record HistorySummary(long Requests, double RequestsPerSecond, double ErrorRate, double? P50, double? P99);
