using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text.Json.Nodes;

namespace Serve.Config;

/// <summary>
/// A loaded and validated config file (<see cref="ServeConfigLoader.Load"/>): the HTTP settings and the
/// applications, each already imported, bound to its <c>args</c> and with its deployment overrides applied.
/// </summary>
public sealed class ServeConfig
{
    internal ServeConfig(string source, HttpConfig http, IReadOnlyList<ApplicationConfig> applications)
    {
        Source = source;
        Http = http;
        Applications = applications;
    }

    /// <summary>The file (or import target) the config came from.</summary>
    public string Source { get; }

    /// <summary>The <c>http</c> section.</summary>
    public HttpConfig Http { get; }

    /// <summary>The <c>applications</c> section, in file order.</summary>
    public IReadOnlyList<ApplicationConfig> Applications { get; }

    /// <summary>
    /// The <c>cluster</c> section, or null when the file has none. Only <c>serve run</c> acts on it (it makes the host
    /// a node of a cluster); <see cref="ConfigureHost"/>, <see cref="ApplyAsync"/> and the admin API ignore it.
    /// </summary>
    public ClusterConfig? Cluster { get; init; }

    /// <summary>Applies the <c>http</c> section to host options (unset keys keep the host's defaults).</summary>
    public void ConfigureHost(ServeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Http.Host is { } host)
            options.Http.Host = host;
        if (Http.Port is { } port)
            options.Http.Port = port;
        if (Http.RequestTimeout is { } timeout)
            options.Http.RequestTimeout = timeout;
    }

    /// <summary>
    /// Deploys every application (<see cref="IServeClient.RunAsync{THandle}"/> with its name and route prefix), in
    /// file order. Everything was validated when the config was loaded, so a bad file never reaches the host.
    /// </summary>
    public async Task ApplyAsync(IServeClient serve, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(serve);
        foreach (var app in Applications)
            await app.RunAsync(serve, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deploys one of this config's applications.</summary>
    public Task ApplyOneAsync(IServeClient serve, ApplicationConfig application, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(serve);
        ArgumentNullException.ThrowIfNull(application);
        return application.RunAsync(serve, cancellationToken);
    }
}

/// <summary>The <c>http</c> section of a config file.</summary>
public sealed class HttpConfig
{
    /// <summary><c>host</c>: the address to listen on, or null for the host default.</summary>
    public string? Host { get; init; }

    /// <summary><c>port</c>: the TCP port, or null for the host default.</summary>
    public int? Port { get; init; }

    /// <summary><c>request_timeout_s</c>: the per-request limit, or null for none.</summary>
    public TimeSpan? RequestTimeout { get; init; }
}

/// <summary>One entry of the <c>applications</c> section, imported and bound.</summary>
public sealed class ApplicationConfig
{
    private static readonly MethodInfo RunMethod =
        typeof(IServeClient).GetMethod(nameof(IServeClient.RunAsync)) ?? throw new InvalidOperationException("IServeClient.RunAsync not found");

    internal ApplicationConfig(string name, string? routePrefix, string import, JsonNode? args, Application application)
    {
        Name = name;
        RoutePrefix = routePrefix;
        Import = import;
        Args = args;
        Application = application;
    }

    /// <summary><c>name</c>: the application name (default <c>"default"</c>).</summary>
    public string Name { get; }

    /// <summary><c>route_prefix</c> without a trailing <c>/</c>, or null for the ingress deployment's own (else <c>"/"</c>).</summary>
    public string? RoutePrefix { get; }

    /// <summary>The prefix the application is served under: <see cref="RoutePrefix"/>, else its ingress's, else <c>"/"</c>.</summary>
    internal string ServedRoutePrefix => Routing.RoutePrefixes.Normalize(RoutePrefix ?? Application.OptionsNoCopy.RoutePrefix ?? "/");

    /// <summary><c>import</c>: <c>path/to/Assembly.dll:Namespace.Type.Method</c>.</summary>
    public string Import { get; }

    /// <summary><c>args</c>: what was bound to the builder's parameters.</summary>
    public JsonNode? Args { get; }

    /// <summary>The bound application graph with the <c>deployments</c> overrides applied.</summary>
    public Application Application { get; }

    internal async Task RunAsync(IServeClient serve, CancellationToken cancellationToken)
    {
        var run = RunMethod.MakeGenericMethod(Application.Definition.HandleType);
        var options = new RunOptions { Name = Name, RoutePrefix = RoutePrefix };
        Task task;
        try
        {
            task = (Task)run.Invoke(serve, [Application, options, cancellationToken])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
        await task.ConfigureAwait(false);
    }
}

/// <summary>
/// A config file (or <c>import</c> target) is invalid. The message is <c>"{file}: {key.path}: {reason}"</c>, one
/// line per problem found.
/// </summary>
public sealed class ServeConfigException : ServeException
{
    /// <summary>Creates the exception from the problems found in one file.</summary>
    public ServeConfigException(string file, IReadOnlyList<ServeConfigError> errors)
        : base(string.Join(Environment.NewLine, errors.Select(e => $"{file}: {e.Path}: {e.Reason}")))
    {
        File = file;
        Errors = errors;
    }

    /// <summary>The file, as given.</summary>
    public string File { get; }

    /// <summary>Every problem found, in file order.</summary>
    public IReadOnlyList<ServeConfigError> Errors { get; }
}

/// <summary>One problem in a config file: the key path (e.g. <c>applications[0].deployments[1].num_replicas</c>) and why.</summary>
/// <param name="Path">The key path; <c>$</c> for the document itself.</param>
/// <param name="Reason">What is wrong and what is allowed.</param>
public sealed record ServeConfigError(string Path, string Reason);
