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
    public int MinReplicas { get; set; } = (int)OptionRules.MinReplicas.Default;

    /// <summary>The most replicas. Default 1 (raise it to let the deployment scale up).</summary>
    public int MaxReplicas { get; set; } = (int)OptionRules.MaxReplicas.Default;

    /// <summary>Replicas on first deploy; <c>null</c> (default) means <see cref="MinReplicas"/>.</summary>
    public int? InitialReplicas { get; set; }

    /// <summary>Ongoing plus queued calls per replica the autoscaler aims at. Default 2.</summary>
    public double TargetOngoingRequests { get; set; } = OptionRules.TargetOngoingRequests.Default;

    /// <summary>How long the load must call for more replicas before they are added. Default 30 s.</summary>
    public TimeSpan UpscaleDelay { get; set; } = TimeSpan.FromSeconds(OptionRules.UpscaleDelay.Default);

    /// <summary>How long the load must call for fewer replicas before they are removed. Default 600 s.</summary>
    public TimeSpan DownscaleDelay { get; set; } = TimeSpan.FromSeconds(OptionRules.DownscaleDelay.Default);

    /// <summary>How often the load (ongoing + queued calls) is sampled and a decision taken. Default 10 s.</summary>
    public TimeSpan MetricsInterval { get; set; } = TimeSpan.FromSeconds(OptionRules.MetricsInterval.Default);

    /// <summary>The window the samples are averaged over. Default 30 s.</summary>
    public TimeSpan LookBackPeriod { get; set; } = TimeSpan.FromSeconds(OptionRules.LookBackPeriod.Default);

    /// <summary>Returns a copy.</summary>
    public AutoscalingOptions Clone() => (AutoscalingOptions)MemberwiseClone();

    internal bool SameAs(AutoscalingOptions? other) =>
        other is not null && MinReplicas == other.MinReplicas && MaxReplicas == other.MaxReplicas && InitialReplicas == other.InitialReplicas
        && TargetOngoingRequests == other.TargetOngoingRequests && UpscaleDelay == other.UpscaleDelay && DownscaleDelay == other.DownscaleDelay
        && MetricsInterval == other.MetricsInterval && LookBackPeriod == other.LookBackPeriod;

    /// <summary>The first out-of-range setting as (option, value, rule), or <c>null</c>.</summary>
    internal (string Option, object Value, string Rule)? FindInvalid()
    {
        if (!OptionRules.MinReplicas.Accepts(MinReplicas))
            return (OptionRules.MinReplicas.Option, MinReplicas, OptionRules.MinReplicas.Rule);
        if (MaxReplicas > OptionRules.MaxReplicas.Max)
            return (OptionRules.MaxReplicas.Option, MaxReplicas, OptionRules.MaxReplicas.Rule);
        if (MaxReplicas < OptionRules.MaxReplicas.Min || MaxReplicas < MinReplicas)
            return (OptionRules.MaxReplicas.Option, MaxReplicas, $"must be at least 1 and at least MinReplicas ({MinReplicas.ToString(CultureInfo.InvariantCulture)})");
        if (InitialReplicas is { } initial && (initial < MinReplicas || initial > MaxReplicas))
            return (OptionRules.InitialReplicas.Option, initial, $"must be between MinReplicas ({MinReplicas.ToString(CultureInfo.InvariantCulture)}) and MaxReplicas ({MaxReplicas.ToString(CultureInfo.InvariantCulture)}), or null");
        if (!OptionRules.TargetOngoingRequests.Accepts(TargetOngoingRequests))
            return (OptionRules.TargetOngoingRequests.Option, TargetOngoingRequests, OptionRules.TargetOngoingRequests.Rule);
        if (!DeploymentOptions.Accepts(OptionRules.UpscaleDelay, UpscaleDelay))
            return (OptionRules.UpscaleDelay.Option, UpscaleDelay, OptionRules.UpscaleDelay.Rule);
        if (!DeploymentOptions.Accepts(OptionRules.DownscaleDelay, DownscaleDelay))
            return (OptionRules.DownscaleDelay.Option, DownscaleDelay, OptionRules.DownscaleDelay.Rule);
        if (!DeploymentOptions.Accepts(OptionRules.MetricsInterval, MetricsInterval))
            return (OptionRules.MetricsInterval.Option, MetricsInterval, OptionRules.MetricsInterval.Rule);
        if (LookBackPeriod < MetricsInterval)
            return (OptionRules.LookBackPeriod.Option, LookBackPeriod, $"must be at least MetricsInterval ({MetricsInterval})");
        return null;
    }
}
