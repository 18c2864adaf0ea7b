using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Serve.Replicas;
using Serve.Routing;

namespace Serve.Observability;

/// <summary>
/// The instruments of one host, on a <see cref="Meter"/> named <c>Serve</c> (Ray Serve's metric set, with
/// OpenTelemetry-style names). Any <see cref="MeterListener"/> or OpenTelemetry <c>AddMeter("Serve")</c> sees them;
/// the admin API's <c>/metrics</c> exports this host's meter as Prometheus text.
/// </summary>
/// <remarks>
/// Call metrics are recorded where a call releases its replica slot (<see cref="DeploymentRouter"/>), with tags
/// precomputed per replica, and only when a listener has enabled one of them: with no listener a call pays a few
/// field reads and no timestamp. Features that add metrics later (batch sizes, model loads) create their instruments
/// on <see cref="Meter"/> where they record, with the same tags.
/// </remarks>
internal sealed class ServeMetrics : IDisposable
{
    public const string MeterName = "Serve";

    public const string ApplicationTag = "application";
    public const string DeploymentTag = "deployment";
    public const string ReplicaTag = "replica";
    public const string RouteTag = "route";
    public const string MethodTag = "method";
    public const string StatusCodeTag = "status_code";

    private readonly Func<IEnumerable<DeploymentEndpoint>> _endpoints;
    private readonly Func<ServeStatus> _status;
    // Health-check failures in a row per replica (written by the controller loop); weak, so stopped replicas vanish.
    private readonly ConditionalWeakTable<IReplica, StrongBox<int>> _healthFailures = new();

    public ServeMetrics(Func<IEnumerable<DeploymentEndpoint>> endpoints, Func<ServeStatus> status)
    {
        _endpoints = endpoints;
        _status = status;
        Meter = new Meter(MeterName, typeof(ServeMetrics).Assembly.GetName().Version?.ToString());
        Requests = Meter.CreateCounter<long>("serve.deployment.requests", "{request}",
            "Calls a replica finished, successful or not (Ray: serve_deployment_request_counter).");
        Errors = Meter.CreateCounter<long>("serve.deployment.errors", "{request}",
            "Calls a replica finished with an exception (Ray: serve_deployment_error_counter).");
        ProcessingLatency = Meter.CreateHistogram<double>("serve.deployment.processing_latency", "ms",
            "Time from admission on a replica to the end of the call, queueing excluded (Ray: serve_deployment_processing_latency_ms).");
        ReplicaStarts = Meter.CreateCounter<long>("serve.deployment.replica_starts", "{replica}",
            "Replicas that started and began serving (Ray: serve_deployment_replica_starts).");
        Meter.CreateObservableGauge("serve.replica.ongoing_requests", ObserveOngoing, "{request}",
            "Calls running on a replica now (Ray: serve_replica_processing_queries).");
        Meter.CreateObservableGauge("serve.deployment.queued_requests", ObserveQueued, "{request}",
            "Calls waiting in a deployment's queue for a free replica slot (Ray: serve_deployment_queued_queries).");
        Meter.CreateObservableGauge("serve.deployment.replica_healthy", ObserveHealthy, "{replica}",
            "1 for each replica that takes calls and passed its last health check, 0 while its health checks fail (Ray: serve_deployment_replica_healthy).");
        HealthCheckFailures = Meter.CreateCounter<long>("serve.deployment.health_check_failures", "{check}",
            "Health checks that threw or timed out (3 in a row replace the replica).");
        Meter.CreateObservableGauge("serve.autoscaling.target_replicas", ObserveAutoscalingTargets, "{replica}",
            "The replica count the autoscaler aims at, for deployments with Autoscaling (Ray: serve_autoscaling_target_replicas).");
        HttpRequests = Meter.CreateCounter<long>("serve.http.requests", "{request}",
            "HTTP requests answered by the ingress (Ray: serve_num_http_requests).");
        HttpErrors = Meter.CreateCounter<long>("serve.http.errors", "{request}",
            "HTTP requests answered with a status of 400 or more (Ray: serve_num_http_error_requests).");
        HttpLatency = Meter.CreateHistogram<double>("serve.http.request_latency", "ms",
            "Time from the ingress receiving an HTTP request to its answer (Ray: serve_http_request_latency_ms).");
        BatchSizes = Meter.CreateHistogram<long>("serve.batch.size", "{call}",
            "Calls in each batch a [Batch] method ran (Ray: serve_batch_size).");
        ModelLoads = Meter.CreateCounter<long>("serve.multiplexed.model_loads", "{model}",
            "Models a multiplexed replica started loading (Ray: serve_multiplexed_model_load_latency_ms counts).");
    }

    public Meter Meter { get; }
    public Counter<long> Requests { get; }
    public Counter<long> Errors { get; }
    public Histogram<double> ProcessingLatency { get; }
    public Counter<long> ReplicaStarts { get; }
    public Counter<long> HealthCheckFailures { get; }
    public Counter<long> HttpRequests { get; }
    public Counter<long> HttpErrors { get; }
    public Histogram<double> HttpLatency { get; }
    public Counter<long> ModelLoads { get; }
    public Histogram<long> BatchSizes { get; }

    /// <summary>The last failed requests and autoscaler decisions, for the admin API's dashboard.</summary>
    public RecentEvents Recent { get; } = new();

    /// <summary>True when a listener wants any per-call measurement.</summary>
    public bool CallsEnabled => Requests.Enabled || Errors.Enabled || ProcessingLatency.Enabled;

    public static TagList DeploymentTags(string application, string deployment) => new()
    {
        { ApplicationTag, application },
        { DeploymentTag, deployment },
    };

    public static TagList ReplicaTags(string application, string deployment, string replica) => new()
    {
        { ApplicationTag, application },
        { DeploymentTag, deployment },
        { ReplicaTag, replica },
    };

    public void RecordCall(in TagList replicaTags, long started, bool failed)
    {
        Requests.Add(1, in replicaTags);
        if (failed)
            Errors.Add(1, in replicaTags);
        ProcessingLatency.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, in replicaTags);
    }

    public void RecordReplicaStarted(Replica replica)
    {
        ReplicaStarts.Add(1, in replica.MetricTags);
        var tags = replica.MetricTags;
        if (replica.Models is { } models)
            models.ModelLoading = () => ModelLoads.Add(1, in tags);
        if (replica.Batches.Count == 0)
            return;
        Action<string, int> onBatch = (method, size) =>
        {
            if (!BatchSizes.Enabled)
                return;
            var withMethod = tags;
            withMethod.Add(MethodTag, method);
            BatchSizes.Record(size, in withMethod);
        };
        foreach (var queue in replica.Batches)
            queue.Observe(onBatch);
    }

    /// <summary>Called by the controller loop with each health-check outcome.</summary>
    public void RecordHealthCheck(IReplica replica, bool failed)
    {
        var failures = _healthFailures.GetValue(replica, static _ => new StrongBox<int>());
        if (!failed)
        {
            Volatile.Write(ref failures.Value, 0);
            return;
        }
        Interlocked.Increment(ref failures.Value);
        HealthCheckFailures.Add(1, in replica.MetricTags);
    }

    public void RecordHttp(string application, string route, string method, int statusCode, double milliseconds)
    {
        if (!HttpRequests.Enabled && !HttpErrors.Enabled && !HttpLatency.Enabled)
            return;
        var tags = new TagList
        {
            { ApplicationTag, application },
            { RouteTag, route },
            { MethodTag, method },
            { StatusCodeTag, StatusCodeText(statusCode) },
        };
        HttpRequests.Add(1, in tags);
        if (statusCode >= 400)
            HttpErrors.Add(1, in tags);
        HttpLatency.Record(milliseconds, in tags);
    }

    private static readonly string[] s_statusCodes = CreateStatusCodes();

    private static string[] CreateStatusCodes()
    {
        var codes = new string[600];
        for (var i = 0; i < codes.Length; i++)
            codes[i] = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return codes;
    }

    private static string StatusCodeText(int code) =>
        (uint)code < (uint)s_statusCodes.Length ? s_statusCodes[code] : code.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private IEnumerable<Measurement<int>> ObserveOngoing()
    {
        foreach (var endpoint in _endpoints())
            foreach (var replica in endpoint.Router.Replicas)
            {
                // A replica on another node is reported by that node.
                if (replica.IsLocal)
                    yield return new Measurement<int>(replica.Ongoing, in replica.MetricTags);
            }
    }

    private IEnumerable<Measurement<int>> ObserveQueued()
    {
        foreach (var endpoint in _endpoints())
            yield return new Measurement<int>(endpoint.Router.QueuedCount, in endpoint.Router.MetricTags);
    }

    private IEnumerable<Measurement<int>> ObserveHealthy()
    {
        foreach (var endpoint in _endpoints())
            foreach (var replica in endpoint.Router.Replicas)
            {
                if (replica.IsLocal)
                    yield return new Measurement<int>(IsFailingHealthChecks(replica) ? 0 : 1, in replica.MetricTags);
            }
    }

    private bool IsFailingHealthChecks(IReplica replica) =>
        _healthFailures.TryGetValue(replica, out var failures) && Volatile.Read(ref failures.Value) > 0;

    private IEnumerable<Measurement<int>> ObserveAutoscalingTargets()
    {
        foreach (var application in _status().Applications)
        {
            foreach (var deployment in application.Deployments)
            {
                if (deployment.Options.Autoscaling is not null)
                    yield return new Measurement<int>(deployment.TargetReplicas, DeploymentTags(application.Name, deployment.Name));
            }
        }
    }

    public void Dispose() => Meter.Dispose();
}
