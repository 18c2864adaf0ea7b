namespace Serve;

/// <summary>
/// Implemented by deployments that take a <see cref="DeploymentOptions.UserConfig"/>. Serve calls
/// <see cref="ReconfigureAsync"/> on every replica before its first request, and again on live replicas
/// (without restarting them) whenever only the user config changes on redeploy.
/// </summary>
/// <typeparam name="TConfig">The config type; a value of another type is converted through JSON.</typeparam>
public interface IReconfigurable<in TConfig>
{
    /// <summary>Applies a new user config to this replica.</summary>
    ValueTask ReconfigureAsync(TConfig config, CancellationToken cancellationToken);
}
