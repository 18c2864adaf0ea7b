namespace Serve;

/// <summary>
/// A deployment whose replicas can say whether they are healthy. The host calls <see cref="CheckHealthAsync"/> every
/// <see cref="DeploymentOptions.HealthCheckPeriod"/>; throwing, or taking longer than
/// <see cref="DeploymentOptions.HealthCheckTimeout"/>, is a failure, and after 3 failures in a row the replica is
/// replaced. A public <c>CheckHealthAsync(CancellationToken)</c> method returning <see cref="Task"/> or
/// <see cref="ValueTask"/> works the same without the interface.
/// </summary>
public interface IHealthCheckable
{
    /// <summary>Completes when the replica is healthy; throws (with the reason) when it is not.</summary>
    ValueTask CheckHealthAsync(CancellationToken cancellationToken);
}
