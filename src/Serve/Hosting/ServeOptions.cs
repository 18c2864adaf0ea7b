using Microsoft.Extensions.Logging;

namespace Serve;

/// <summary>Options of a Serve host (<see cref="ServeHost.StartAsync(Action{ServeOptions}?, CancellationToken)"/> or <c>AddServe</c>).</summary>
public sealed class ServeOptions
{
    /// <summary>
    /// How many times in a row a replica may fail to start (its constructor or first reconfigure throws) before the
    /// deployment is marked unhealthy and <c>RunAsync</c> fails with <see cref="DeploymentFailedException"/>. Default 3.
    /// </summary>
    public int MaxReplicaStartAttempts { get; set; } = 3;

    /// <summary>The wait before retrying a failed replica start; it doubles after each failure. Default 100 ms.</summary>
    public TimeSpan ReplicaStartBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Services for <see cref="FromServicesAttribute"/> constructor parameters of an embedded host. A host made by
    /// <c>AddServe</c> uses the application's service provider instead.
    /// </summary>
    public IServiceProvider? Services { get; set; }

    /// <summary>
    /// Where the host logs (replicas waiting for resources, failed starts, health replacements, the access log).
    /// <c>null</c> (the default) means: the <see cref="ILoggerFactory"/> of <see cref="Services"/> if it has one, else,
    /// for a host started with <see cref="ServeHost.StartAsync(Action{ServeOptions}?, CancellationToken)"/>, the console
    /// at level <see cref="LogLevel.Warning"/> (warnings and errors only, so an embedded host never fails in silence).
    /// Set your own factory to log elsewhere, or <see cref="Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance"/>
    /// to log nothing. A host made by <c>AddServe</c> uses the application's logging.
    /// </summary>
    /// <example><code>await ServeHost.StartAsync(o => o.LoggerFactory = LoggerFactory.Create(b => b.AddConsole().SetMinimumLevel(LogLevel.Information)));</code></example>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Creates the serializer for values that cross an isolation boundary (arguments and results whose types an
    /// isolated deployment loads separately). Serve creates one per isolated load context, plus one for the host, so
    /// type metadata a serializer caches is released with its context. Default: <see cref="Isolation.JsonBoundarySerializer"/>.
    /// </summary>
    public Func<Isolation.IBoundarySerializer> BoundarySerializer { get; set; } = static () => new Isolation.JsonBoundarySerializer();

    /// <summary>The HTTP ingress (Kestrel) that serves each application's ingress deployment under its route prefix.</summary>
    public HttpOptions Http { get; } = new();

    /// <summary>The admin REST API (<c>/api/serve/applications</c>) used by <c>serve deploy</c>, <c>serve status</c> and <c>serve shutdown</c>.</summary>
    public AdminOptions Admin { get; } = new();

    /// <summary>
    /// The host's resource pool: CPUs, GPUs and custom resources that replicas reserve (see docs/resources.md).
    /// </summary>
    /// <example><code>o.Resources.Cpus = 8; o.Resources.UseLogicalGpus(2, 16L &lt;&lt; 30); o.Resources.Custom["tpu"] = 1;</code></example>
    public ResourceOptions Resources { get; } = new();

    internal void Validate()
    {
        Resources.Validate();
        Http.Validate();
        if (BoundarySerializer is null)
            throw new ArgumentNullException(nameof(BoundarySerializer), "ServeOptions.BoundarySerializer must not be null; leave it at its default (System.Text.Json) or set a factory.");
        Admin.Validate();
        if (MaxReplicaStartAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxReplicaStartAttempts), MaxReplicaStartAttempts,
                $"ServeOptions.MaxReplicaStartAttempts = {MaxReplicaStartAttempts} is out of range; use 1 or more.");
        if (ReplicaStartBackoff < TimeSpan.Zero || ReplicaStartBackoff > DeploymentOptions.MaxTimerDuration)
            throw new ArgumentOutOfRangeException(nameof(ReplicaStartBackoff), ReplicaStartBackoff,
                $"ServeOptions.ReplicaStartBackoff = {ReplicaStartBackoff} is out of range; use 0 or more, at most 49 days (the default is 100 ms).");
    }
}

/// <summary>Options of the HTTP ingress (<see cref="ServeOptions.Http"/>).</summary>
public sealed class HttpOptions
{
    /// <summary>Whether <see cref="ServeHost.StartAsync(Action{ServeOptions}?, CancellationToken)"/> starts the HTTP ingress. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The address to listen on. Default <c>"127.0.0.1"</c> (this machine only); <c>"0.0.0.0"</c> listens on every interface.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The TCP port. Default 8000; 0 picks a free port (see <see cref="ServeHost.HttpAddress"/>).</summary>
    public int Port { get; set; } = 8000;

    /// <summary>The largest request body accepted, in bytes; a larger one is answered 413. Default 10 MB.</summary>
    public long MaxRequestBodySize { get; set; } = 10 * 1024 * 1024;

    /// <summary>How long one request may take before it is cancelled and answered 504. Default <c>null</c> (no limit).</summary>
    public TimeSpan? RequestTimeout { get; set; }

    internal void Validate()
    {
        if (Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(Port), Port, $"ServeOptions.Http.Port = {Port} is out of range; use 0 to 65535 (0 picks a free port).");
        if (string.IsNullOrWhiteSpace(Host))
            throw new ArgumentException("ServeOptions.Http.Host is empty; use an IP address such as \"127.0.0.1\".", nameof(Host));
        if (MaxRequestBodySize < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxRequestBodySize), MaxRequestBodySize, $"ServeOptions.Http.MaxRequestBodySize = {MaxRequestBodySize} must be positive.");
        if (RequestTimeout is { } t && (t <= TimeSpan.Zero || t > DeploymentOptions.MaxTimerDuration))
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), t, $"ServeOptions.Http.RequestTimeout = {t} must be positive and at most 49 days, or null for no limit.");
    }
}

/// <summary>Options of the admin REST API (<see cref="ServeOptions.Admin"/>); see docs/admin.md.</summary>
public sealed class AdminOptions
{
    /// <summary>Whether the host serves the admin API. Default false for an embedded host; <c>serve run</c> turns it on.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// The address to listen on. Default <c>"127.0.0.1"</c>. A non-loopback address is refused unless
    /// <see cref="AccessToken"/> is set.
    /// </summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The TCP port. Default 8265; 0 picks a free port (see <see cref="ServeHost.AdminAddress"/>).</summary>
    public int Port { get; set; } = 8265;

    /// <summary>When set, every admin request must send <c>Authorization: Bearer &lt;token&gt;</c> (otherwise 401). Default none.</summary>
    public string? AccessToken { get; set; }

    internal void Validate()
    {
        if (!Enabled)
            return;
        if (Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(Port), Port, $"ServeOptions.Admin.Port = {Port} is out of range; use 0 to 65535 (0 picks a free port).");
        if (string.IsNullOrWhiteSpace(Host))
            throw new ArgumentException("ServeOptions.Admin.Host is empty; use an IP address such as \"127.0.0.1\".", nameof(Host));
        if (AccessToken is { } token && string.IsNullOrWhiteSpace(token))
            throw new ArgumentException("ServeOptions.Admin.AccessToken is empty; set a secret token or leave it null.", nameof(AccessToken));
    }
}
