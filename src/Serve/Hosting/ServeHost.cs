using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Serve.CodeGeneration;
using Serve.Control;
using Serve.Routing;

namespace Serve;

/// <summary>
/// An in-process Serve host: runs applications as replicas, routes handle calls to them, updates them without
/// downtime. Start one with <see cref="StartAsync(Action{ServeOptions}?, CancellationToken)"/> (embedded) or with
/// <c>services.AddServe()</c> (Generic Host). Dispose it (or call <see cref="ShutdownAsync"/>) to drain and stop.
/// </summary>
public sealed class ServeHost : IServeClient, IAsyncDisposable
{
    private readonly ServeController _controller;
    private readonly object _shutdownLock = new();
    private Task? _shutdownTask;

    /// <summary>Creates a host; prefer <see cref="StartAsync(Action{ServeOptions}?, CancellationToken)"/> or <c>AddServe</c>.</summary>
    /// <param name="options">The host options.</param>
    /// <param name="services">Services for <see cref="FromServicesAttribute"/> parameters; defaults to <see cref="ServeOptions.Services"/> or an empty provider.</param>
    /// <param name="loggerFactory">Where the host logs; defaults to the services' <see cref="ILoggerFactory"/> or none.</param>
    public ServeHost(ServeOptions options, IServiceProvider? services = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        services ??= options.Services ?? new ServiceCollection().BuildServiceProvider();
        loggerFactory ??= services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
        _controller = new ServeController(options, services, loggerFactory.CreateLogger("Serve"));
    }

    /// <summary>The host's options.</summary>
    public ServeOptions Options { get; }

    /// <summary>Starts an embedded host.</summary>
    /// <example><code>await using var serve = await ServeHost.StartAsync();</code></example>
    public static Task<ServeHost> StartAsync(Action<ServeOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        var options = new ServeOptions();
        configure?.Invoke(options);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(new ServeHost(options));
    }

    /// <inheritdoc />
    public async Task<THandle> RunAsync<THandle>(Application<THandle> application, RunOptions? options = null, CancellationToken cancellationToken = default)
        where THandle : DeploymentHandle
    {
        ArgumentNullException.ThrowIfNull(application);
        ThrowIfShutDown();
        var spec = ApplicationSpec.FromGraph(application, options ?? new RunOptions());
        await _controller.DeployAsync(spec, cancellationToken).ConfigureAwait(false);
        return GetHandle<THandle>(spec.IngressName, spec.Name);
    }

    /// <inheritdoc />
    public Task DeleteAsync(string applicationName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(applicationName);
        return _controller.DeleteAsync(applicationName, cancellationToken);
    }

    /// <inheritdoc />
    public IReadOnlyList<DeploymentInfo> ListDeployments() =>
        _controller.Status.Applications.SelectMany(a => a.Deployments).ToArray();

    /// <inheritdoc />
    public DeploymentInfo GetDeployment(string deploymentName, string? applicationName = null)
    {
        ArgumentNullException.ThrowIfNull(deploymentName);
        var matches = ListDeployments().Where(d => d.Name == deploymentName && (applicationName is null || d.ApplicationName == applicationName)).ToArray();
        return matches.Length switch
        {
            1 => matches[0],
            0 => throw NotFound(deploymentName, applicationName),
            _ => throw Ambiguous(deploymentName, matches.Select(m => m.ApplicationName)),
        };
    }

    /// <inheritdoc />
    public THandle GetHandle<THandle>(string deploymentName, string? applicationName = null) where THandle : DeploymentHandle
    {
        var endpoint = FindEndpoint(deploymentName, applicationName);
        var handle = endpoint.Definition.CreateHandle(new HandleTarget(endpoint));
        return handle as THandle ?? throw new InvalidCastException(
            $"Deployment '{deploymentName}' of application '{endpoint.ApplicationName}' has handle type {endpoint.Definition.HandleType.Name}, not {typeof(THandle).Name}; " +
            $"call GetHandle<{endpoint.Definition.HandleType.Name}>.");
    }

    /// <inheritdoc />
    public DeploymentHandle GetHandle(string deploymentName, string? applicationName = null) =>
        new(FindEndpoint(deploymentName, applicationName));

    /// <inheritdoc />
    public ServeStatus GetStatus() => _controller.Status;

    /// <inheritdoc />
    public Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        Task shutdown;
        lock (_shutdownLock)
            shutdown = _shutdownTask ??= _controller.ShutdownAsync(CancellationToken.None);
        return shutdown.WaitAsync(cancellationToken);
    }

    /// <summary>Shuts the host down (see <see cref="ShutdownAsync"/>) and waits until it has.</summary>
    public async ValueTask DisposeAsync() => await ShutdownAsync().ConfigureAwait(false);

    private DeploymentEndpoint FindEndpoint(string deploymentName, string? applicationName)
    {
        ArgumentNullException.ThrowIfNull(deploymentName);
        if (applicationName is not null)
        {
            return _controller.TryGetEndpoint(applicationName, deploymentName, out var endpoint)
                ? endpoint
                : throw NotFound(deploymentName, applicationName);
        }
        var matches = _controller.Endpoints.Where(e => e.DeploymentName == deploymentName).ToArray();
        return matches.Length switch
        {
            1 => matches[0],
            0 => throw NotFound(deploymentName, null),
            _ => throw Ambiguous(deploymentName, matches.Select(m => m.ApplicationName)),
        };
    }

    private DeploymentNotFoundException NotFound(string deploymentName, string? applicationName)
    {
        var running = _controller.Endpoints.Select(e => $"{e.ApplicationName}/{e.DeploymentName}").Order(StringComparer.Ordinal).ToArray();
        var where = applicationName is null ? "in any application" : $"in application '{applicationName}'";
        return new DeploymentNotFoundException(
            $"No deployment named '{deploymentName}' is running {where}. Running deployments: {(running.Length == 0 ? "none" : string.Join(", ", running))}. " +
            "Deploy it with RunAsync first, or check the name.");
    }

    private static DeploymentNotFoundException Ambiguous(string deploymentName, IEnumerable<string> applications) =>
        new($"Deployment '{deploymentName}' runs in several applications ({string.Join(", ", applications.Order(StringComparer.Ordinal))}); pass applicationName to choose one.");

    private void ThrowIfShutDown()
    {
        if (Volatile.Read(ref _shutdownTask) is not null)
            throw new ObjectDisposedException(nameof(ServeHost), "The Serve host has shut down; start a new one.");
    }
}
