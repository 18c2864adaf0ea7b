using System.Globalization;
using System.Text.Json;

namespace Serve;

/// <summary>
/// The options of one deployment (Ray Serve's <c>@serve.deployment(...)</c> arguments). The
/// <see cref="DeploymentAttribute"/> values are the defaults; <see cref="Application{THandle}.WithOptions"/>
/// changes them for one bound deployment.
/// </summary>
public sealed class DeploymentOptions
{
    /// <summary>The value of <see cref="MaxQueuedRequests"/> meaning "no limit".</summary>
    public const int Unbounded = OptionRules.Unbounded;
    /// <summary>Default <see cref="NumReplicas"/>.</summary>
    public const int DefaultNumReplicas = OptionRules.DefaultNumReplicas;
    /// <summary>Default <see cref="MaxOngoingRequests"/>.</summary>
    public const int DefaultMaxOngoingRequests = OptionRules.DefaultMaxOngoingRequests;
    /// <summary>
    /// Default <see cref="NumCpus"/>: 0, so a deployment that does not ask for CPUs reserves none and fits on any
    /// machine (a Kubernetes pod without requests).
    /// </summary>
    public const double DefaultNumCpus = OptionRules.DefaultNumCpus;
    /// <summary>Default <see cref="HealthCheckPeriod"/> in seconds.</summary>
    public const double DefaultHealthCheckPeriodSeconds = OptionRules.DefaultHealthCheckPeriodSeconds;
    /// <summary>Default <see cref="HealthCheckTimeout"/> in seconds.</summary>
    public const double DefaultHealthCheckTimeoutSeconds = OptionRules.DefaultHealthCheckTimeoutSeconds;
    /// <summary>Default <see cref="GracefulShutdownTimeout"/> in seconds.</summary>
    public const double DefaultGracefulShutdownTimeoutSeconds = OptionRules.DefaultGracefulShutdownTimeoutSeconds;
    /// <summary>
    /// The most replicas one deployment may run: the upper bound of <see cref="NumReplicas"/> and of the
    /// <see cref="AutoscalingOptions"/> replica counts. A larger number is a typo, not a plan.
    /// </summary>
    public const int MaxNumReplicas = OptionRules.MaxNumReplicas;
    /// <summary>The most CPUs one replica may reserve (<see cref="NumCpus"/>).</summary>
    public const double MaxNumCpus = OptionRules.MaxNumCpus;
    /// <summary>The most GPUs one replica may reserve (<see cref="NumGpus"/>).</summary>
    public const double MaxNumGpus = OptionRules.MaxNumGpus;
    /// <summary>The largest amount of one custom resource a replica may reserve (<see cref="Resources"/>): 10^12, room for a byte count.</summary>
    public const double MaxResourceAmount = OptionRules.MaxResourceAmount;

    /// <summary>The deployment name, unique within its application. Defaults to the class or function name.</summary>
    public string Name { get; set; } = "";

    /// <summary>How many replicas run. Zero keeps the deployment defined with no replica.</summary>
    public int NumReplicas { get; set; } = DefaultNumReplicas;

    /// <summary>
    /// Autoscaling settings; when set they replace <see cref="NumReplicas"/> (the controller picks the count between
    /// <see cref="AutoscalingOptions.MinReplicas"/> and <see cref="AutoscalingOptions.MaxReplicas"/>). <c>null</c>
    /// (default): a fixed <see cref="NumReplicas"/>.
    /// </summary>
    public AutoscalingOptions? Autoscaling { get; set; }

    /// <summary>
    /// How often a replica's <c>CheckHealthAsync</c> (see <see cref="IHealthCheckable"/>) is called; after 3 failures
    /// in a row the replica is replaced. Default 10 s.
    /// </summary>
    public TimeSpan HealthCheckPeriod { get; set; } = TimeSpan.FromSeconds(DefaultHealthCheckPeriodSeconds);

    /// <summary>How long one health check may take before it counts as failed. Default 30 s.</summary>
    public TimeSpan HealthCheckTimeout { get; set; } = TimeSpan.FromSeconds(DefaultHealthCheckTimeoutSeconds);

    /// <summary>How many calls one replica runs at once (Ray's <c>max_ongoing_requests</c>).</summary>
    public int MaxOngoingRequests { get; set; } = DefaultMaxOngoingRequests;

    /// <summary>
    /// How many calls may wait in the deployment's queue when every replica is at
    /// <see cref="MaxOngoingRequests"/>; beyond it calls fail at once with <see cref="BackPressureException"/>.
    /// <see cref="Unbounded"/> (-1, the default) means no limit; 0 means never queue.
    /// </summary>
    public int MaxQueuedRequests { get; set; } = Unbounded;

    /// <summary>
    /// The HTTP route prefix when this deployment is an application's ingress: a URL path such as <c>"/greeter"</c>
    /// (ASCII letters, digits, <c>/</c> and <c>- . _ ~ ! $ &amp; ' ( ) * + , ; = : @</c>); a trailing <c>/</c> is
    /// ignored. See docs/http.md.
    /// </summary>
    public string? RoutePrefix { get; set; }

    /// <summary>
    /// The code version. Redeploying the same version with the same options is a no-op; a different version is a
    /// rolling update. When unset, the version is derived from the implementation assembly's identity (its MVID),
    /// so a rebuilt assembly counts as new code.
    /// </summary>
    public string? Version { get; set; }

    /// <summary>
    /// Any JSON-serializable value handed to <see cref="IReconfigurable{TConfig}.ReconfigureAsync"/>. Changing only
    /// this on redeploy reconfigures live replicas without restarting them.
    /// </summary>
    public object? UserConfig { get; set; }

    /// <summary>
    /// CPUs each replica reserves from the host's pool (<see cref="ServeOptions.Resources"/>); a replica that does not
    /// fit waits. Also bounds the replica's concurrently running calls to ⌈NumCpus⌉ threads
    /// (<see cref="ReplicaContext.CpuThreads"/>). Default 0: the replica reserves nothing and its calls are not limited,
    /// so deployments that do not ask for CPUs are schedulable on any machine; set it for replicas whose CPU work must
    /// not oversubscribe the host. See docs/resources.md.
    /// </summary>
    public double NumCpus { get; set; } = DefaultNumCpus;

    /// <summary>
    /// GPUs each replica reserves: a fraction up to 1 shares one device with other replicas (best fit, never spanning
    /// devices), a whole number above 1 takes that many devices. The replica gets <see cref="ReplicaContext.Gpu"/>
    /// (device, fraction, memory budget; with Serve.Cuda also its own CUDA stream and a budgeted allocator).
    /// </summary>
    public double NumGpus { get; set; }

    /// <summary>Custom resources each replica reserves, name to amount, from <see cref="ResourceOptions.Custom"/>.</summary>
    public IDictionary<string, double> Resources { get; set; } = new Dictionary<string, double>(StringComparer.Ordinal);

    /// <summary>
    /// Where the deployment's code runs: <see cref="RuntimeEnv.Shared"/> (the default: the application's own load
    /// context, zero-copy calls), <see cref="RuntimeEnv.Isolated"/> (its own collectible context and statics) or
    /// <see cref="RuntimeEnv.FromDirectory"/> (its assembly and private dependencies from a build output folder).
    /// Changing it on redeploy is a code change: replicas roll over to the new context.
    /// </summary>
    public RuntimeEnv RuntimeEnv { get; set; } = RuntimeEnv.Shared;

    /// <summary>How long a stopping replica waits for its in-flight calls before it is disposed anyway.</summary>
    public TimeSpan GracefulShutdownTimeout { get; set; } = TimeSpan.FromSeconds(DefaultGracefulShutdownTimeoutSeconds);

    /// <summary>
    /// Whether HTTP requests to this deployment (when it is an application's ingress) may carry JSON properties that
    /// match no parameter or member; they are then ignored. Default <c>false</c>: an unknown property is answered 400
    /// naming it, so a misspelled field is not silently dropped. Turn it on for clients that send extra fields. A type
    /// can also opt out on its own with System.Text.Json's <c>[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Skip)]</c>.
    /// </summary>
    public bool AllowUnknownJsonProperties { get; set; }

    /// <summary>
    /// Whether a call in flight on a replica whose node failed (multi-node Serve) is retried once on another replica,
    /// within the call's deadline. Default <c>true</c>, so an accepted call is not lost with a node; the call may then
    /// run twice (at least once). Turn it off for deployments whose methods are not idempotent: the caller then gets
    /// <see cref="ReplicaLostException"/> naming the deployment, the replica and the node.
    /// </summary>
    public bool RetryOnNodeFailure { get; set; } = true;

    /// <summary>
    /// Multi-node Serve: at most this many replicas of the deployment on one node, so that one node's failure cannot
    /// take all of them (Ray Serve's <c>max_replicas_per_node</c>). Default 0: no cap. Replicas beyond what the nodes
    /// allow are reported <c>Unschedulable</c> with each node's reason. Ignored on a single-node host.
    /// </summary>
    public int MaxReplicasPerNode { get; set; }

    /// <summary>
    /// Multi-node Serve: the labels a node must carry (every one, with the same value) to run a replica of the
    /// deployment, e.g. <c>["gpu"] = "h100"</c>; nodes get labels from <c>ServeClusterOptions.NodeLabels</c>. Default
    /// empty: any node. Ignored on a single-node host.
    /// </summary>
    public IDictionary<string, string> NodeSelector { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Returns a deep copy (the <see cref="UserConfig"/> object itself is shared).</summary>
    public DeploymentOptions Clone() => new()
    {
        Name = Name,
        NumReplicas = NumReplicas,
        MaxOngoingRequests = MaxOngoingRequests,
        MaxQueuedRequests = MaxQueuedRequests,
        RoutePrefix = RoutePrefix,
        Version = Version,
        UserConfig = UserConfig,
        NumCpus = NumCpus,
        NumGpus = NumGpus,
        Resources = new Dictionary<string, double>(Resources, StringComparer.Ordinal),
        GracefulShutdownTimeout = GracefulShutdownTimeout,
        RuntimeEnv = RuntimeEnv,
        Autoscaling = Autoscaling?.Clone(),
        HealthCheckPeriod = HealthCheckPeriod,
        HealthCheckTimeout = HealthCheckTimeout,
        AllowUnknownJsonProperties = AllowUnknownJsonProperties,
        RetryOnNodeFailure = RetryOnNodeFailure,
        MaxReplicasPerNode = MaxReplicasPerNode,
        NodeSelector = new Dictionary<string, string>(NodeSelector, StringComparer.Ordinal),
    };

    /// <summary>
    /// Throws <see cref="ArgumentOutOfRangeException"/> naming the deployment, the option and the value when an
    /// option is out of range.
    /// </summary>
    /// <param name="deploymentName">The deployment the options belong to, used in the message.</param>
    public void Validate(string deploymentName)
    {
        if (string.IsNullOrWhiteSpace(Name))
            throw Invalid(deploymentName, nameof(Name), Name, "must not be empty; set Name to a non-empty string or leave it unset to use the class name");
        if (!OptionRules.NumReplicas.Accepts(NumReplicas))
            throw Invalid(deploymentName, nameof(NumReplicas), NumReplicas, OptionRules.NumReplicas.Rule);
        if (!OptionRules.MaxOngoingRequests.Accepts(MaxOngoingRequests))
            throw Invalid(deploymentName, nameof(MaxOngoingRequests), MaxOngoingRequests, OptionRules.MaxOngoingRequests.Rule);
        if (!OptionRules.MaxQueuedRequests.Accepts(MaxQueuedRequests))
            throw Invalid(deploymentName, nameof(MaxQueuedRequests), MaxQueuedRequests, OptionRules.MaxQueuedRequests.Rule);
        if (!OptionRules.NumCpus.Accepts(NumCpus))
            throw Invalid(deploymentName, nameof(NumCpus), NumCpus, OptionRules.NumCpus.Rule);
        if (!OptionRules.NumGpus.Accepts(NumGpus))
            throw Invalid(deploymentName, nameof(NumGpus), NumGpus, OptionRules.NumGpus.Rule);
        if (!OptionRules.IsWholeEnough(NumGpus))
            throw Invalid(deploymentName, nameof(NumGpus), NumGpus, OptionRules.WholeGpusRule);
        foreach (var (name, amount) in Resources)
        {
            if (string.IsNullOrWhiteSpace(name))
                throw Invalid(deploymentName, nameof(Resources), name, "has an empty resource name; name every custom resource");
            if (!OptionRules.ResourceAmount.Accepts(amount))
                throw Invalid(deploymentName, $"{nameof(Resources)}[\"{name}\"]", amount, OptionRules.ResourceAmount.Rule);
        }
        if (!OptionRules.MaxReplicasPerNode.Accepts(MaxReplicasPerNode))
            throw Invalid(deploymentName, nameof(MaxReplicasPerNode), MaxReplicasPerNode, OptionRules.MaxReplicasPerNode.Rule);
        if (NodeSelector is null)
            throw Invalid(deploymentName, nameof(NodeSelector), null, "must not be null; leave it empty to allow any node");
        foreach (var (label, value) in NodeSelector)
        {
            if (string.IsNullOrWhiteSpace(label) || label.Contains('=') || label.Contains(','))
                throw Invalid(deploymentName, nameof(NodeSelector), label, "has an empty label name or one containing '=' or ','; name every label, e.g. [\"zone\"] = \"a\"");
            if (value is null)
                throw Invalid(deploymentName, $"{nameof(NodeSelector)}[\"{label}\"]", null, "must not be null; give the label's value, e.g. \"a\"");
        }
        if (Autoscaling?.FindInvalid() is { } bad)
            throw Invalid(deploymentName, bad.Option, bad.Value, bad.Rule);
        if (!Accepts(OptionRules.HealthCheckPeriod, HealthCheckPeriod))
            throw Invalid(deploymentName, nameof(HealthCheckPeriod), HealthCheckPeriod, OptionRules.HealthCheckPeriod.Rule);
        if (!Accepts(OptionRules.HealthCheckTimeout, HealthCheckTimeout))
            throw Invalid(deploymentName, nameof(HealthCheckTimeout), HealthCheckTimeout, OptionRules.HealthCheckTimeout.Rule);
        if (RuntimeEnv is null)
            throw Invalid(deploymentName, nameof(RuntimeEnv), null, "must be set; use RuntimeEnv.Shared (the default), RuntimeEnv.Isolated() or RuntimeEnv.FromDirectory(path)");
        if (!Accepts(OptionRules.GracefulShutdownTimeout, GracefulShutdownTimeout))
            throw Invalid(deploymentName, nameof(GracefulShutdownTimeout), GracefulShutdownTimeout, OptionRules.GracefulShutdownTimeout.Rule);
        if (RoutePrefix is { } prefix && Routing.RoutePrefixes.Problem(prefix) is { } problem)
            throw Invalid(deploymentName, nameof(RoutePrefix), prefix, problem);
    }

    /// <summary>The longest duration a .NET timer takes (<c>uint.MaxValue - 1</c> ms, about 49.7 days); longer time options are refused.</summary>
    internal static readonly TimeSpan MaxTimerDuration = TimeSpan.FromMilliseconds((long)OptionRules.MaxTimerMilliseconds);

    /// <summary>True when the duration <paramref name="value"/> is in the range of the time option <paramref name="rule"/> (bounds in seconds; the timer bound compared exactly).</summary>
    internal static bool Accepts(OptionRule rule, TimeSpan value)
    {
        var min = TimeSpan.FromSeconds(rule.Min);
        var max = rule.Max == OptionRules.MaxTimerSeconds ? MaxTimerDuration
            : rule.Max >= TimeSpan.MaxValue.TotalSeconds ? TimeSpan.MaxValue
            : TimeSpan.FromSeconds(rule.Max);
        return (rule.MinExclusive ? value > min : value >= min) && value <= max;
    }

    private static ArgumentOutOfRangeException Invalid(string deployment, string option, object? value, string rule)
    {
        var shown = value switch
        {
            null => "null",
            string s => $"\"{s}\"",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString(),
        };
        return new ArgumentOutOfRangeException(option, value,
            $"Deployment '{deployment}': option {option} = {shown} is out of range: it {rule}.");
    }

    /// <summary>True when a replica started with these options can keep serving under <paramref name="other"/>: only the resources it reserved matter.</summary>
    internal bool SameReplicaShape(DeploymentOptions other) =>
        NumCpus == other.NumCpus
        && NumGpus == other.NumGpus
        && Resources.Count == other.Resources.Count
        && Resources.All(r => other.Resources.TryGetValue(r.Key, out var v) && v == r.Value);

    /// <summary>The user config as canonical JSON, used to detect a change on redeploy.</summary>
    internal string UserConfigJson() => UserConfig is null ? "null" : JsonSerializer.Serialize(UserConfig, UserConfig.GetType());
}
