using Serve.Config;

namespace Serve;

/// <summary>Deploys a loaded config on a Serve host.</summary>
public static class ServeConfigExtensions
{
    /// <summary>Deploys every application of <paramref name="config"/> (see <see cref="ServeConfig.ApplyAsync"/>).</summary>
    public static Task ApplyConfigAsync(this IServeClient serve, ServeConfig config, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.ApplyAsync(serve, cancellationToken);
    }
}
