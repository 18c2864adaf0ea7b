using System.Diagnostics;

namespace Serve.Control;

/// <summary>
/// The autoscaling state of one deployment: a timer that asks the controller loop to sample the load every
/// <see cref="AutoscalingOptions.MetricsInterval"/>, the samples of the look-back window, and since when the load has
/// asked for more or fewer replicas. The decision itself is <see cref="Decide"/>; only the controller loop calls it.
/// </summary>
internal sealed class Autoscaler : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Queue<(long Timestamp, double Load)> _samples = new();
    private long? _upSince;
    private long? _downSince;

    public Autoscaler(TimeSpan interval, Action tick)
    {
        Interval = interval;
        _ = RunAsync(tick);
    }

    public TimeSpan Interval { get; }

    /// <summary>The average load over the window, as of the last sample (for the status and metrics).</summary>
    public double AverageLoad { get; private set; }

    private async Task RunAsync(Action tick)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                tick();
        }
        catch (OperationCanceledException)
        {
            // Disposed: the deployment stopped autoscaling or is gone.
        }
    }

    /// <summary>
    /// Records one sample (ongoing + queued calls now) and returns the replica count to run: the current one unless
    /// the window's average has asked for another count for at least the up- or downscale delay.
    /// </summary>
    public int Decide(AutoscalingOptions options, int current, double load, long now)
    {
        _samples.Enqueue((now, load));
        var oldest = now - (long)(options.LookBackPeriod.TotalSeconds * Stopwatch.Frequency);
        while (_samples.Count > 1 && _samples.Peek().Timestamp < oldest)
            _samples.Dequeue();
        var sum = 0.0;
        foreach (var (_, l) in _samples)
            sum += l;
        AverageLoad = sum / _samples.Count;
        var desired = Math.Clamp((int)Math.Ceiling(AverageLoad / options.TargetOngoingRequests - 1e-9), options.MinReplicas, options.MaxReplicas);
        if (desired > current)
        {
            _downSince = null;
            _upSince ??= now;
            if (Stopwatch.GetElapsedTime(_upSince.Value, now) >= options.UpscaleDelay)
            {
                _upSince = null;
                return desired;
            }
        }
        else if (desired < current)
        {
            _upSince = null;
            _downSince ??= now;
            if (Stopwatch.GetElapsedTime(_downSince.Value, now) >= options.DownscaleDelay)
            {
                _downSince = null;
                return desired;
            }
        }
        else
        {
            _upSince = null;
            _downSince = null;
        }
        return current;
    }

    public void Dispose() => _stop.Cancel();
}
