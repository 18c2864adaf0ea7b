namespace Serve;

/// <summary>
/// The names under which Serve publishes its telemetry, for OpenTelemetry's <c>AddSource</c>/<c>AddMeter</c> or your own
/// <see cref="System.Diagnostics.ActivityListener"/>/<see cref="System.Diagnostics.Metrics.MeterListener"/>.
/// </summary>
public static class ServeDiagnostics
{
    /// <summary>
    /// The <see cref="System.Diagnostics.ActivitySource"/> of Serve's spans (<c>"Serve"</c>): one per handle call, per
    /// HTTP request and per batch. Nothing is recorded, and the handle call allocates nothing for tracing, while no
    /// listener samples it.
    /// </summary>
    public const string ActivitySourceName = "Serve";

    /// <summary>The <see cref="System.Diagnostics.Metrics.Meter"/> of Serve's metrics (<c>"Serve"</c>, one instance per host).</summary>
    public const string MeterName = "Serve";
}
