using Serve.Config;

namespace Serve.Cli;

/// <summary>
/// <c>serve run &lt;config.yaml | Assembly.dll:Namespace.Type.Method&gt;</c>: loads and validates the target, starts a
/// host with the config's <c>http</c> settings, deploys every application while printing what each deployment waits
/// on, prints each application's URL with a curl line to try it, serves until <c>stop</c> is cancelled (Ctrl-C,
/// SIGTERM) and then shuts down gracefully.
/// </summary>
public static class RunCommand
{
    /// <summary>Exit code: served and shut down cleanly.</summary>
    public const int Ok = 0;
    /// <summary>Exit code: an application failed to deploy.</summary>
    public const int DeployFailed = 1;
    /// <summary>Exit code: the config or import target is invalid; nothing was started.</summary>
    public const int InvalidConfig = 2;
    /// <summary>Exit code: <c>--cluster</c> (or <c>cluster.store</c>) names a store this node cannot reach, or it could not join the cluster.</summary>
    public const int ClusterUnavailable = 3;

    /// <summary>Runs the command; returns the exit code.</summary>
    /// <param name="target">A <c>.yaml</c>, <c>.yml</c> or <c>.json</c> config file, or <c>Assembly.dll:Namespace.Type.Method</c>.</param>
    /// <param name="output">Where progress and URLs are written.</param>
    /// <param name="error">Where errors are written.</param>
    /// <param name="stop">Cancelled to stop serving.</param>
    /// <param name="configure">Changes host options after the config's (tests use it for a free port).</param>
    /// <param name="started">Called once every application is deployed, with the running host.</param>
    public static Task<int> ExecuteAsync(string target, TextWriter output, TextWriter error, CancellationToken stop,
        Action<ServeOptions>? configure = null, Action<ServeHost>? started = null) =>
        ExecuteAsync(target, cluster: null, output, error, stop, configure, started);

    /// <summary>
    /// Runs the command; with <paramref name="cluster"/> (<c>--cluster redis://host:port</c>) or a <c>cluster</c>
    /// section in the config, the host is one node of a cluster (Serve.Orleans, Redis clustering). Returns the exit code.
    /// </summary>
    /// <param name="target">A <c>.yaml</c>, <c>.yml</c> or <c>.json</c> config file, or <c>Assembly.dll:Namespace.Type.Method</c>.</param>
    /// <param name="cluster">The cluster store (<c>redis://host:port</c>); overrides the config's <c>cluster.store</c>. Null: the config decides.</param>
    /// <param name="output">Where progress and URLs are written.</param>
    /// <param name="error">Where errors are written.</param>
    /// <param name="stop">Cancelled to stop serving.</param>
    /// <param name="configure">Changes host options after the config's (tests use it for a free port).</param>
    /// <param name="started">Called once every application is deployed, with the running host.</param>
    public static async Task<int> ExecuteAsync(string target, string? cluster, TextWriter output, TextWriter error, CancellationToken stop,
        Action<ServeOptions>? configure, Action<ServeHost>? started)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        ServeConfig config;
        try
        {
            config = IsConfigFile(target) ? ServeConfigLoader.Load(target) : ServeConfigLoader.FromImport(target);
        }
        catch (ServeConfigException e)
        {
            await error.WriteLineAsync($"error: invalid config{Environment.NewLine}{e.Message}").ConfigureAwait(false);
            return InvalidConfig;
        }

        var clusterSettings = ClusterSettings.Resolve(config, cluster, out var clusterProblem);
        if (clusterProblem is not null)
        {
            await error.WriteLineAsync($"error: invalid cluster settings{Environment.NewLine}{clusterProblem}").ConfigureAwait(false);
            return InvalidConfig;
        }
        void ConfigureServe(ServeOptions o)
        {
            o.Admin.Enabled = true;
            config.ConfigureHost(o);
            configure?.Invoke(o);
        }

        ServeHost serve;
        IAsyncDisposable owner;
        try
        {
            if (clusterSettings is null)
            {
                serve = await ServeHost.StartAsync(ConfigureServe, stop).ConfigureAwait(false);
                owner = serve;
            }
            else
            {
                var (node, code) = await ClusterNode.StartAsync(clusterSettings, ConfigureServe, output, error, stop).ConfigureAwait(false);
                if (node is null)
                    return code;
                serve = node.Serve;
                owner = node;
            }
        }
        catch (Exception e) when (e is ServeException or ArgumentException or IOException or InvalidOperationException)
        {
            await error.WriteLineAsync($"error: cannot start the host: {e.Message}").ConfigureAwait(false);
            return InvalidConfig;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return Ok;
        }

        await using (owner.ConfigureAwait(false))
        {
            try
            {
                foreach (var app in config.Applications)
                {
                    await output.WriteLineAsync($"Deploying application '{app.Name}' ({app.Import})...").ConfigureAwait(false);
                    var deploying = config.ApplyOneAsync(serve, app, stop);
                    await DeployProgress.FollowAsync(serve, app.Name, deploying, output).ConfigureAwait(false);
                    await deploying.ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                await output.WriteLineAsync("Stopped before every application was deployed; shutting down.").ConfigureAwait(false);
                return Ok;
            }
            catch (Exception e) when (e is ServeException or ArgumentException)
            {
                await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return DeployFailed;
            }

            await output.WriteLineAsync().ConfigureAwait(false);
            foreach (var app in serve.GetStatus().Applications)
            {
                if (serve.HttpAddress is not { } address)
                {
                    await output.WriteLineAsync($"Application '{app.Name}' is deployed (HTTP disabled: call it through a handle).").ConfigureAwait(false);
                    continue;
                }
                var url = new Uri(address, app.RoutePrefix.TrimStart('/')).ToString();
                await output.WriteLineAsync($"Application '{app.Name}' is serving at {url}").ConfigureAwait(false);
                foreach (var curl in CurlExamples.For(serve.GetHandle(app.IngressDeployment, app.Name).Definition, url))
                    await output.WriteLineAsync($"    {curl}").ConfigureAwait(false);
            }
            if (serve.AdminAddress is { } admin)
            {
                await output.WriteLineAsync($"Dashboard at {admin}").ConfigureAwait(false);
                await output.WriteLineAsync($"Admin API at {admin} (serve status, serve deploy, serve shutdown).").ConfigureAwait(false);
            }
            await output.WriteLineAsync("Press Ctrl-C to stop.").ConfigureAwait(false);
            started?.Invoke(serve);

            try
            {
                using var either = CancellationTokenSource.CreateLinkedTokenSource(stop, serve.ShutdownStarted);
                await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await output.WriteLineAsync("Shutting down: finishing in-flight requests...").ConfigureAwait(false);
            await serve.ShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            await output.WriteLineAsync("Stopped.").ConfigureAwait(false);
        }
        return Ok;
    }

    private static bool IsConfigFile(string target) =>
        Path.GetExtension(target).ToLowerInvariant() is ".yaml" or ".yml" or ".json";
}
