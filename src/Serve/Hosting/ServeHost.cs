using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Serve.CodeGeneration;
using Serve.Control;
using Serve.Http;
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
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _httpLock = new(1, 1);
    private HttpIngress? _http;
    private AdminApi? _admin;
    private readonly CancellationTokenSource _shutdownStarted = new();
    private Task? _shutdownTask;
    private ILoggerFactory? _ownedLoggerFactory;

    /// <summary>Creates a host; prefer <see cref="StartAsync(Action{ServeOptions}?, CancellationToken)"/> or <c>AddServe</c>.</summary>
    /// <param name="options">The host options.</param>
    /// <param name="services">Services for <see cref="FromServicesAttribute"/> parameters; defaults to <see cref="ServeOptions.Services"/> or an empty provider.</param>
    /// <param name="loggerFactory">Where the host logs; defaults to <see cref="ServeOptions.LoggerFactory"/>, else the services' <see cref="ILoggerFactory"/>, else none.</param>
    public ServeHost(ServeOptions options, IServiceProvider? services = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        services ??= options.Services ?? new ServiceCollection().BuildServiceProvider();
        loggerFactory ??= options.LoggerFactory ?? services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
        _logger = loggerFactory.CreateLogger("Serve");
        AccessLogger = loggerFactory.CreateLogger(AccessLog.Category);
        Metrics = new Observability.ServeMetrics(() => _controller!.Endpoints, () => _controller!.Status);
        // A GPU runtime registered in DI (Serve.Cuda's AddCuda()) serves a host whose options name none.
        options.Resources.GpuRuntime ??= services.GetService<IGpuRuntime>();
        // A cluster layer (Serve.Orleans) registered in the services: the cluster controller assigns this node its replicas.
        _cluster = services.GetService<IClusterLayer>();
        _controller = new ServeController(options, services, _logger, Metrics, clusterAssigned: _cluster is not null);
        AdminWrites = new AdminApplier(this, _cluster, _logger);
    }

    /// <summary>Applies admin writes (the admin API's PUT and DELETE, and on a cluster node the other nodes' ones), one at a time.</summary>
    internal AdminApplier AdminWrites { get; }

    private readonly IClusterLayer? _cluster;

    /// <summary>What this node deploys, for the cluster controller (empty on a single host).</summary>
    internal IReadOnlyList<DeploymentRegistration> ClusterRegistrations => _controller.Registrations;

    /// <summary>This host's resource pool.</summary>
    internal Scheduling.ResourcePool ResourcePool => _controller.ResourcePool;

    /// <summary>Sets how many replicas of each deployment run on this node (cluster assignment mode only).</summary>
    internal Task AssignAsync(IReadOnlyDictionary<(string App, string Deployment), int> counts, CancellationToken cancellationToken) =>
        _controller.AssignAsync(counts, cancellationToken);

    /// <summary>This node's own status, without the rest of the cluster.</summary>
    internal ServeStatus LocalStatus => _controller.Status;

    private ServeStatus Status => _cluster is { } cluster ? cluster.Describe(_controller.Status) : _controller.Status;

    /// <summary>This host's instruments (meter <c>Serve</c>).</summary>
    internal Observability.ServeMetrics Metrics { get; }

    /// <summary>The per-request access log (category <c>Serve.Access</c>).</summary>
    internal ILogger AccessLogger { get; }

    /// <summary>The host's options.</summary>
    public ServeOptions Options { get; }

    /// <summary>
    /// The address the HTTP ingress listens on (with the real port when <see cref="HttpOptions.Port"/> is 0), or
    /// <c>null</c> when HTTP is disabled or not started.
    /// </summary>
    public Uri? HttpAddress => Volatile.Read(ref _http)?.Address;

    /// <summary>
    /// The address the admin API listens on (with the real port when <see cref="AdminOptions.Port"/> is 0), or
    /// <c>null</c> when it is disabled (the default for an embedded host) or not started.
    /// </summary>
    public Uri? AdminAddress => Volatile.Read(ref _admin)?.Address;

    /// <summary>Cancelled when the host starts shutting down (<see cref="ShutdownAsync"/>, or <c>POST /api/serve/shutdown</c>).</summary>
    public CancellationToken ShutdownStarted => _shutdownStarted.Token;

    /// <summary>
    /// Starts an embedded host and, unless <see cref="HttpOptions.Enabled"/> is false, its HTTP ingress on
    /// <see cref="HttpOptions.Host"/>:<see cref="HttpOptions.Port"/> (default <c>http://127.0.0.1:8000</c>).
    /// </summary>
    /// <example><code>await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0);</code></example>
    /// <exception cref="ServeException">The HTTP port could not be bound (e.g. it is in use); the message names the address.</exception>
    public static async Task<ServeHost> StartAsync(Action<ServeOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        var options = new ServeOptions();
        configure?.Invoke(options);
        cancellationToken.ThrowIfCancellationRequested();
        // Embedded without a logger of the user's: warnings and errors go to the console, so nothing fails in silence.
        ILoggerFactory? console = null;
        if (options.LoggerFactory is null && options.Services?.GetService<ILoggerFactory>() is null)
            console = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        ServeHost host;
        try
        {
            host = new ServeHost(options, loggerFactory: console);
        }
        catch
        {
            console?.Dispose();
            throw;
        }
        host._ownedLoggerFactory = console;
        try
        {
            await host.StartHttpAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return host;
    }

    /// <summary>Starts the HTTP ingress if it is enabled and not started yet (used by StartAsync and the hosted service).</summary>
    internal async Task StartHttpAsync(CancellationToken cancellationToken)
    {
        if (!Options.Http.Enabled && !Options.Admin.Enabled)
            return;
        await _httpLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfShutDown();
            if (Options.Admin.Enabled && _admin is null)
                Volatile.Write(ref _admin, await AdminApi.StartAsync(Options.Admin, this, _logger, cancellationToken).ConfigureAwait(false));
            if (Options.Http.Enabled && _http is null)
                Volatile.Write(ref _http, await HttpIngress.StartAsync(Options.Http, () => _controller.Routes, Metrics, _logger, AccessLogger, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            _httpLock.Release();
        }
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
        Status.Applications.SelectMany(a => a.Deployments).ToArray();

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
    public ServeStatus GetStatus() => Status;

    /// <summary>The deployments this host runs (the cluster layer adds other nodes' replicas to their routers).</summary>
    internal IEnumerable<DeploymentEndpoint> Endpoints => _controller.Endpoints;

    /// <summary>The endpoint of <paramref name="deploymentName"/> in <paramref name="applicationName"/>, if this host runs it.</summary>
    internal bool TryGetEndpoint(string applicationName, string deploymentName, out DeploymentEndpoint endpoint) =>
        _controller.TryGetEndpoint(applicationName, deploymentName, out endpoint);

    /// <inheritdoc />
    public Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        Task shutdown;
        lock (_shutdownLock)
            shutdown = _shutdownTask ??= ShutdownCoreAsync();
        return shutdown.WaitAsync(cancellationToken);
    }

    private async Task ShutdownCoreAsync()
    {
        try
        {
            await _shutdownStarted.CancelAsync().ConfigureAwait(false);
        }
        catch (AggregateException)
        {
            // A ShutdownStarted callback threw; shutting down goes on.
        }
        // Drain first (in-flight HTTP calls finish or fail like handle calls, new ones get 503), then stop Kestrel.
        try
        {
            await _controller.ShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await _httpLock.WaitAsync().ConfigureAwait(false);
            try
            {
                var http = Interlocked.Exchange(ref _http, null);
                if (http is not null)
                    await http.DisposeAsync().ConfigureAwait(false);
                var admin = Interlocked.Exchange(ref _admin, null);
                if (admin is not null)
                    await admin.DisposeAsync().ConfigureAwait(false);
                Metrics.Dispose();
            }
            finally
            {
                _httpLock.Release();
            }
            // Last, so the shutdown's own warnings are written (the console logger flushes on dispose).
            _ownedLoggerFactory?.Dispose();
        }
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
