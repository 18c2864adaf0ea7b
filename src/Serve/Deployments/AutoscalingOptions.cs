using System.Globalization;

namespace Serve;

/// <summary>
/// Autoscaling of one deployment (Ray Serve's <c>autoscaling_config</c>), set through
/// <see cref="DeploymentOptions.Autoscaling"/>. When set, it replaces <see cref="DeploymentOptions.NumReplicas"/>: the
/// controller keeps between <see cref="MinReplicas"/> and <see cref="MaxReplicas"/> replicas, aiming at
/// <see cref="TargetOngoingRequests"/> ongoing plus queued calls per replica, averaged over
/// <see cref="LookBackPeriod"/>. The defaults are Ray Serve's.
/// </summary>
public sealed class AutoscalingOptions
{
    /// <summary>The fewest replicas; 0 allows scaling to zero (the first call then waits for a replica). Default 1.</summary>
    public int MinReplicas { get; set; } = 1;

    /// <summary>The most replicas. Default 1 (raise it to let the deployment scale up).</summary>
    public int MaxReplicas { get; set; } = 1;

    /// <summary>Replicas on first deploy; <c>null</c> (default) means <see cref="MinReplicas"/>.</summary>
    public int? InitialReplicas { get; set; }

    /// <summary>Ongoing plus queued calls per replica the autoscaler aims at. Default 2.</summary>
    public double TargetOngoingRequests { get; set; } = 2;

    /// <summary>How long the load must call for more replicas before they are added. Default 30 s.</summary>
    public TimeSpan UpscaleDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the load must call for fewer replicas before they are removed. Default 600 s.</summary>
    public TimeSpan DownscaleDelay { get; set; } = TimeSpan.FromSeconds(600);

    /// <summary>How often the load (ongoing + queued calls) is sampled and a decision taken. Default 10 s.</summary>
    public TimeSpan MetricsInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The window the samples are averaged over. Default 30 s.</summary>
    public TimeSpan LookBackPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Returns a copy.</summary>
    public AutoscalingOptions Clone() => (AutoscalingOptions)MemberwiseClone();

    internal bool SameAs(AutoscalingOptions? other) =>
        other is not null && MinReplicas == other.MinReplicas && MaxReplicas == other.MaxReplicas && InitialReplicas == other.InitialReplicas
        && TargetOngoingRequests == other.TargetOngoingRequests && UpscaleDelay == other.UpscaleDelay && DownscaleDelay == other.DownscaleDelay
        && MetricsInterval == other.MetricsInterval && LookBackPeriod == other.LookBackPeriod;

    /// <summary>The first out-of-range setting as (option, value, rule), or <c>null</c>.</summary>
    internal (string Option, object Value, string Rule)? FindInvalid()
    {
        if (MinReplicas < 0 || MinReplicas > DeploymentOptions.MaxNumReplicas)
            return ("Autoscaling.MinReplicas", MinReplicas, "must be 0 or more (0 allows scaling to zero) and at most 10000");
        if (MaxReplicas > DeploymentOptions.MaxNumReplicas)
            return ("Autoscaling.MaxReplicas", MaxReplicas, "must be at most 10000");
        if (MaxReplicas < 1 || MaxReplicas < MinReplicas)
            return ("Autoscaling.MaxReplicas", MaxReplicas, $"must be at least 1 and at least MinReplicas ({MinReplicas.ToString(CultureInfo.InvariantCulture)})");
        if (InitialReplicas is { } initial && (initial < MinReplicas || initial > MaxReplicas))
            return ("Autoscaling.InitialReplicas", initial, $"must be between MinReplicas ({MinReplicas.ToString(CultureInfo.InvariantCulture)}) and MaxReplicas ({MaxReplicas.ToString(CultureInfo.InvariantCulture)}), or null");
        if (!(TargetOngoingRequests > 0) || double.IsInfinity(TargetOngoingRequests))
            return ("Autoscaling.TargetOngoingRequests", TargetOngoingRequests, "must be a finite number above 0 (the default is 2)");
        if (UpscaleDelay < TimeSpan.Zero)
            return ("Autoscaling.UpscaleDelay", UpscaleDelay, "must not be negative");
        if (DownscaleDelay < TimeSpan.Zero)
            return ("Autoscaling.DownscaleDelay", DownscaleDelay, "must not be negative");
        if (MetricsInterval <= TimeSpan.Zero || MetricsInterval > DeploymentOptions.MaxTimerDuration)
            return ("Autoscaling.MetricsInterval", MetricsInterval, "must be positive and at most 49 days");
        if (LookBackPeriod < MetricsInterval)
            return ("Autoscaling.LookBackPeriod", LookBackPeriod, $"must be at least MetricsInterval ({MetricsInterval})");
        return null;
    }
}
