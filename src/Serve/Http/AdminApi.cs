using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serve.Config;
using Serve.Control;
using Serve.Observability;

namespace Serve.Http;

/// <summary>
/// The admin REST API: <c>GET/PUT/DELETE /api/serve/applications</c>, <c>DELETE /api/serve/applications/{name}</c>
/// and <c>POST /api/serve/shutdown</c>, on its own Kestrel server (default <c>http://127.0.0.1:8265</c>), plus the
/// dashboard page at <c>/</c> (<see cref="DashboardAssets"/>) that polls <c>GET /api/serve/applications</c>.
/// </summary>
internal sealed class AdminApi : IAsyncDisposable
{
    private const string Applications = "/api/serve/applications";
    private const string MetricsPath = "/metrics";

    private readonly AdminOptions _options;
    private readonly ServeHost _host;
    private readonly ILogger _logger;
    private readonly PrometheusExporter _exporter;
    private readonly MetricsHistory _history;
    private KestrelListener? _listener;

    private AdminApi(AdminOptions options, ServeHost host, ILogger logger)
    {
        _options = options;
        _host = host;
        _logger = logger;
        // Listening starts with the admin API: without it no listener is attached and calls record nothing.
        _exporter = new PrometheusExporter(host.Metrics.Meter);
        _history = new MetricsHistory(host.Metrics.Meter);
    }

    /// <summary>The bound address (with the real port when <see cref="AdminOptions.Port"/> is 0).</summary>
    public Uri? Address => _listener?.Address;

    public static async Task<AdminApi> StartAsync(AdminOptions options, ServeHost host, ILogger logger, CancellationToken cancellationToken)
    {
        var address = KestrelListener.ParseHost(options.Host, "ServeOptions.Admin.Host");
        if (!IPAddress.IsLoopback(address) && options.AccessToken is null)
            throw new ServeException(
                $"The Serve admin API refuses to listen on {options.Host}, which is not a loopback address, without an access token: " +
                "set ServeOptions.Admin.AccessToken (clients then send 'Authorization: Bearer <token>'), or use ServeOptions.Admin.Host = \"127.0.0.1\".");
        var api = new AdminApi(options, host, logger);
        try
        {
            await api.StartCoreAsync(address, cancellationToken).ConfigureAwait(false);
            return api;
        }
        catch
        {
            await api.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(IPAddress address, CancellationToken cancellationToken)
    {
        // Only PUT has a body, a config document: refuse anything larger than the loader reads (413).
        _listener = await KestrelListener.StartAsync(address, _options.Port, ServeConfigLoader.MaxDocumentBytes, HandleAsync, "admin API",
            "set o.Admin.Port to a free port (or 0 to pick one), or o.Admin.Enabled = false.", cancellationToken).ConfigureAwait(false);
        Log.AdminListening(_logger, _listener.Address.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _listener, null) is { } listener)
            await listener.DisposeAsync().ConfigureAwait(false);
        _exporter.Dispose();
        _history.Dispose();
    }

    // ---- Requests ---------------------------------------------------------------------------------------------

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        // The page, its script and styles hold no data and load without the token (a browser cannot send a bearer
        // header when navigating); the page then asks for the token and sends it with every API call.
        if (HttpMethods.IsGet(request.Method) && DashboardAssets.Find(request.Path.Value) is { } asset)
        {
            await DashboardAssets.WriteAsync(context, asset).ConfigureAwait(false);
            return;
        }
        if (_options.AccessToken is { } token && !Authorized(request, token))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await ErrorAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized: send 'Authorization: Bearer <token>' with the host's admin access token.").ConfigureAwait(false);
            return;
        }
        var path = (request.Path.Value ?? "/").TrimEnd('/');
        var method = request.Method;
        try
        {
            if (path == Applications)
            {
                if (HttpMethods.IsGet(method))
                    await JsonAsync(context, StatusCodes.Status200OK, AdminJson(_host.GetStatus())).ConfigureAwait(false);
                else if (HttpMethods.IsPut(method))
                    await PutAsync(context).ConfigureAwait(false);
                else if (HttpMethods.IsDelete(method))
                    await DeleteAsync(context, null).ConfigureAwait(false);
                else
                    await NotAllowedAsync(context, "GET, PUT, DELETE").ConfigureAwait(false);
            }
            else if (path.StartsWith(Applications + "/", StringComparison.Ordinal) && path.Length > Applications.Length + 1)
            {
                if (HttpMethods.IsDelete(method))
                    await DeleteAsync(context, Uri.UnescapeDataString(path[(Applications.Length + 1)..])).ConfigureAwait(false);
                else
                    await NotAllowedAsync(context, "DELETE").ConfigureAwait(false);
            }
            else if (path == MetricsPath)
            {
                if (HttpMethods.IsGet(method))
                {
                    context.Response.StatusCode = StatusCodes.Status200OK;
                    context.Response.ContentType = PrometheusExporter.ContentType;
                    await context.Response.WriteAsync(_exporter.Scrape(), context.RequestAborted).ConfigureAwait(false);
                }
                else
                    await NotAllowedAsync(context, "GET").ConfigureAwait(false);
            }
            else if (path == "/api/serve/shutdown")
            {
                if (HttpMethods.IsPost(method))
                {
                    context.Response.OnCompleted(() =>
                    {
                        _ = Task.Run(() => _host.ShutdownAsync());
                        return Task.CompletedTask;
                    });
                    await JsonAsync(context, StatusCodes.Status202Accepted, new JsonObject { ["message"] = "Shutting down: in-flight requests finish, then the host stops." }).ConfigureAwait(false);
                }
                else
                    await NotAllowedAsync(context, "POST").ConfigureAwait(false);
            }
            else
                await ErrorAsync(context, StatusCodes.Status404NotFound, $"Not found: {request.Path}. The admin API serves the dashboard at /, {Applications}, /api/serve/shutdown and {MetricsPath}.").ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            await ErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "The Serve host is shutting down.").ConfigureAwait(false);
        }
    }

    private static bool Authorized(HttpRequest request, string token)
    {
        var header = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
            return false;
        var given = Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim());
        var expected = Encoding.UTF8.GetBytes(token);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, expected);
    }

    private async Task PutAsync(HttpContext context)
    {
        var request = context.Request;
        string text;
        try
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await ErrorAsync(context, StatusCodes.Status413PayloadTooLarge,
                $"Payload too large: a config document may be at most {ServeConfigLoader.MaxDocumentBytes} bytes (4 MiB); nothing was changed.").ConfigureAwait(false);
            return;
        }
        var contentType = request.ContentType ?? "";
        var yaml = contentType.Contains("yaml", StringComparison.OrdinalIgnoreCase);
        ServeConfig config;
        try
        {
            config = ServeConfigLoader.LoadText(text, "request body", yaml);
        }
        catch (ServeConfigException e)
        {
            var errors = new JsonArray();
            foreach (var error in e.Errors)
                errors.Add(new JsonObject { ["path"] = error.Path, ["reason"] = error.Reason });
            await JsonAsync(context, StatusCodes.Status400BadRequest, new JsonObject { ["message"] = e.Message, ["errors"] = errors }).ConfigureAwait(false);
            return;
        }

        try
        {
            // On a cluster node the controller records the write first, then this node applies it (the others follow).
            await _host.AdminWrites.PutAsync(config, text, yaml, context.RequestAborted).ConfigureAwait(false);
        }
        catch (ClusterUnavailableException e)
        {
            await ErrorAsync(context, StatusCodes.Status503ServiceUnavailable, e.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is RoutePrefixConflictException or ApplicationSupersededException)
        {
            await ErrorAsync(context, StatusCodes.Status409Conflict, e.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is DeploymentFailedException or UnschedulableException)
        {
            await ErrorAsync(context, StatusCodes.Status422UnprocessableEntity, e.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is ServeException or ArgumentException or InvalidOperationException)
        {
            await ErrorAsync(context, StatusCodes.Status500InternalServerError, e.Message).ConfigureAwait(false);
            return;
        }
        await JsonAsync(context, StatusCodes.Status200OK, AdminJson(_host.GetStatus())).ConfigureAwait(false);
    }

    private async Task DeleteAsync(HttpContext context, string? name)
    {
        string? notFound;
        try
        {
            notFound = await _host.AdminWrites.DeleteAsync(name, context.RequestAborted).ConfigureAwait(false);
        }
        catch (ClusterUnavailableException e)
        {
            await ErrorAsync(context, StatusCodes.Status503ServiceUnavailable, e.Message).ConfigureAwait(false);
            return;
        }
        if (notFound is not null)
        {
            await ErrorAsync(context, StatusCodes.Status404NotFound, notFound).ConfigureAwait(false);
            return;
        }
        await JsonAsync(context, StatusCodes.Status200OK, AdminJson(_host.GetStatus())).ConfigureAwait(false);
    }

    /// <summary>
    /// The status document plus what the dashboard shows: each deployment's requests/s, error rate and p50/p99 over the
    /// last minutes, the recent failed requests with their request ids, and the autoscaler's recent decisions.
    /// </summary>
    internal JsonObject AdminJson(ServeStatus status)
    {
        var json = StatusJson(status);
        foreach (var app in json["applications"]!.AsArray())
        {
            foreach (var d in app!["deployments"]!.AsArray())
                d!["metrics"] = MetricsJson(_history.Read((string)app["name"]!, (string)d["name"]!));
        }
        var errors = new JsonArray();
        foreach (var e in _host.Metrics.Recent.Errors())
            errors.Add(new JsonObject
            {
                ["time"] = e.Time,
                ["request_id"] = e.RequestId,
                ["application"] = e.Application,
                ["deployment"] = e.Deployment,
                ["method"] = e.Method,
                ["path"] = e.Path,
                ["status_code"] = e.StatusCode,
                ["error"] = e.Error,
            });
        var decisions = new JsonArray();
        foreach (var a in _host.Metrics.Recent.Decisions())
            decisions.Add(new JsonObject
            {
                ["time"] = a.Time,
                ["application"] = a.Application,
                ["deployment"] = a.Deployment,
                ["from_replicas"] = a.From,
                ["to_replicas"] = a.To,
                ["load"] = Math.Round(a.Load, 2),
            });
        json["recent_errors"] = errors;
        json["autoscaler_decisions"] = decisions;
        return json;
    }

    private static JsonObject MetricsJson(DeploymentHistory history)
    {
        static JsonArray Numbers(double[] values, int digits)
        {
            var array = new JsonArray();
            foreach (var v in values)
                array.Add(Math.Round(v, digits));
            return array;
        }
        static JsonArray Optional(double?[] values)
        {
            var array = new JsonArray();
            foreach (var v in values)
                array.Add(v is { } x ? JsonValue.Create(x) : null);
            return array;
        }
        var last = history.LastMinute;
        return new JsonObject
        {
            ["slot_seconds"] = history.SlotSeconds,
            ["requests_per_second"] = Numbers(history.RequestsPerSecond, 3),
            ["error_rate"] = Numbers(history.ErrorRate, 4),
            ["p50_ms"] = Optional(history.P50),
            ["p99_ms"] = Optional(history.P99),
            ["last_minute"] = new JsonObject
            {
                ["requests"] = last.Requests,
                ["requests_per_second"] = Math.Round(last.RequestsPerSecond, 3),
                ["error_rate"] = Math.Round(last.ErrorRate, 4),
                ["p50_ms"] = last.P50,
                ["p99_ms"] = last.P99,
            },
        };
    }

    internal static JsonObject StatusJson(ServeStatus status)
    {
        var apps = new JsonArray();
        foreach (var app in status.Applications)
        {
            var deployments = new JsonArray();
            foreach (var d in app.Deployments)
            {
                var replicas = new JsonArray();
                foreach (var r in d.Replicas)
                    replicas.Add(new JsonObject
                    {
                        ["replica_id"] = r.ReplicaId,
                        ["state"] = r.State.ToString().ToUpperInvariant(),
                        ["version"] = r.Version,
                        ["ongoing_requests"] = r.OngoingRequests,
                        ["load_context"] = r.LoadContext,
                        ["cpu_threads"] = r.CpuThreads,
                        ["gpu"] = r.Gpu,
                        // A single host's replicas all run on it.
                        ["node"] = r.Node ?? "local",
                    });
                deployments.Add(new JsonObject
                {
                    ["name"] = d.Name,
                    ["status"] = d.Status.ToString().ToUpperInvariant(),
                    ["message"] = d.Message,
                    ["version"] = d.Version,
                    ["is_ingress"] = d.IsIngress,
                    ["target_replicas"] = d.TargetReplicas,
                    ["restarts"] = d.Restarts,
                    ["running_replicas"] = d.Replicas.Count(r => r.State == ReplicaState.Running),
                    ["queued_requests"] = d.QueuedRequests,
                    ["ongoing_requests"] = d.Replicas.Sum(r => r.OngoingRequests),
                    ["max_ongoing_requests"] = d.Options.MaxOngoingRequests,
                    ["max_queued_requests"] = d.Options.MaxQueuedRequests,
                    ["num_cpus"] = d.Options.NumCpus,
                    ["num_gpus"] = d.Options.NumGpus,
                    ["autoscaling"] = d.Options.Autoscaling is { } autoscaling
                        ? new JsonObject { ["min_replicas"] = autoscaling.MinReplicas, ["max_replicas"] = autoscaling.MaxReplicas, ["target_ongoing_requests"] = autoscaling.TargetOngoingRequests }
                        : null,
                    ["runtime_env"] = d.Options.RuntimeEnv.ToString(),
                    ["replicas"] = replicas,
                });
            }
            apps.Add(new JsonObject
            {
                ["name"] = app.Name,
                ["route_prefix"] = app.RoutePrefix,
                ["ingress_deployment"] = app.IngressDeployment,
                ["status"] = app.Status.ToString().ToUpperInvariant(),
                ["message"] = app.Message,
                ["deployments"] = deployments,
            });
        }
        var json = new JsonObject { ["applications"] = apps };
        if (status.Nodes.Count > 0)
        {
            // A cluster's nodes (Serve.Orleans); a single host has none and its JSON is unchanged.
            var nodes = new JsonArray();
            foreach (var n in status.Nodes)
            {
                var labels = new JsonObject();
                foreach (var (k, v) in n.Labels)
                    labels[k] = v;
                var custom = new JsonObject();
                foreach (var (k, v) in n.Custom)
                    custom[k] = v;
                nodes.Add(new JsonObject
                {
                    ["node_id"] = n.NodeId,
                    ["state"] = n.State,
                    ["cpus"] = n.Cpus,
                    ["gpus"] = new JsonArray([.. n.Gpus.Select(g => (JsonNode?)g)]),
                    ["custom"] = custom,
                    ["labels"] = labels,
                    ["message"] = n.Message,
                    ["is_controller"] = n.IsController,
                    ["is_self"] = n.IsSelf,
                });
            }
            json["nodes"] = nodes;
        }
        return json;
    }

    private static Task NotAllowedAsync(HttpContext context, string allow)
    {
        context.Response.Headers.Allow = allow;
        return ErrorAsync(context, StatusCodes.Status405MethodNotAllowed, $"Method not allowed: use {allow}.");
    }

    private static Task ErrorAsync(HttpContext context, int status, string message) =>
        JsonAsync(context, status, new JsonObject { ["message"] = message });

    private static async Task JsonAsync(HttpContext context, int status, JsonNode body)
    {
        if (context.Response.HasStarted)
            return;
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.WriteAsync(body.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), context.RequestAborted).ConfigureAwait(false);
    }
}
