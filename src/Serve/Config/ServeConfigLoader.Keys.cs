using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serve.Config;

// Reading keys: the http section, one deployment override's options (ranges from OptionRules), autoscaling_config,
// runtime_env, and the typed readers that turn a bad value into "key.path: expected …, got …".
public static partial class ServeConfigLoader
{
    private static HttpConfig ReadHttp(JsonNode node, string at, List<ServeConfigError> errors)
    {
        if (node is not JsonObject obj)
        {
            errors.Add(new(at, $"expected a mapping with keys {List(HttpKeys)}, got {Show(node)}"));
            return new HttpConfig();
        }
        CheckKeys(obj, at, HttpKeys, errors);
        string? host = null;
        if (obj.TryGetPropertyValue("host", out var h))
        {
            host = ReadString(h, $"{at}.host", errors);
            if (host is { } s && !Http.KestrelListener.TryParseHost(s, out _))
            {
                errors.Add(new($"{at}.host", $"expected an IP address such as \"127.0.0.1\", \"0.0.0.0\" or \"::\", or \"localhost\", got {Show(h)}; " +
                                             "the host listens on an address, so other host names are not accepted"));
                host = null;
            }
        }
        int? port = obj.TryGetPropertyValue("port", out var p) ? ReadInt(p, $"{at}.port", 0, 65535, "an integer from 0 to 65535", errors) : null;
        TimeSpan? timeout = null;
        if (obj.TryGetPropertyValue("request_timeout_s", out var t))
            timeout = ReadSeconds(t, $"{at}.request_timeout_s", allowZero: false, errors);
        return new HttpConfig { Host = host, Port = port, RequestTimeout = timeout };
    }

    private static DeploymentOptions? Override(Application node, JsonObject obj, string at, string baseDirectory, List<ServeConfigError> errors)
    {
        var before = errors.Count;
        var o = node.GetOptions();
        if (obj.TryGetPropertyValue("num_replicas", out var v) && ReadInt(v, $"{at}.num_replicas", OptionRules.NumReplicas, errors) is { } replicas)
            o.NumReplicas = replicas;
        if (obj.TryGetPropertyValue("max_ongoing_requests", out v) && ReadInt(v, $"{at}.max_ongoing_requests", OptionRules.MaxOngoingRequests, errors) is { } ongoing)
            o.MaxOngoingRequests = ongoing;
        if (obj.TryGetPropertyValue("max_queued_requests", out v) && ReadInt(v, $"{at}.max_queued_requests", OptionRules.MaxQueuedRequests, errors) is { } queued)
            o.MaxQueuedRequests = queued;
        if (obj.TryGetPropertyValue("num_cpus", out v) && ReadNumber(v, $"{at}.num_cpus", OptionRules.NumCpus, errors) is { } cpus)
            o.NumCpus = cpus;
        if (obj.TryGetPropertyValue("num_gpus", out v) && ReadNumber(v, $"{at}.num_gpus", OptionRules.NumGpus, errors) is { } gpus)
            o.NumGpus = gpus;
        if (obj.TryGetPropertyValue("graceful_shutdown_timeout_s", out v) && ReadSeconds(v, $"{at}.graceful_shutdown_timeout_s", OptionRules.GracefulShutdownTimeout, errors) is { } grace)
            o.GracefulShutdownTimeout = grace;
        if (obj.TryGetPropertyValue("version", out v) && ReadString(v, $"{at}.version", errors) is { } version)
            o.Version = version;
        if (obj.TryGetPropertyValue("runtime_env", out v) && ReadRuntimeEnv(v, $"{at}.runtime_env", baseDirectory, errors) is { } env)
            o.RuntimeEnv = env;
        if (obj.TryGetPropertyValue("health_check_period_s", out v) && ReadSeconds(v, $"{at}.health_check_period_s", OptionRules.HealthCheckPeriod, errors) is { } period)
            o.HealthCheckPeriod = period;
        if (obj.TryGetPropertyValue("health_check_timeout_s", out v) && ReadSeconds(v, $"{at}.health_check_timeout_s", OptionRules.HealthCheckTimeout, errors) is { } timeout)
            o.HealthCheckTimeout = timeout;
        if (obj.TryGetPropertyValue("allow_unknown_json_properties", out v))
        {
            if (v is JsonValue flag && flag.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                o.AllowUnknownJsonProperties = flag.GetValueKind() == JsonValueKind.True;
            else
                errors.Add(new($"{at}.allow_unknown_json_properties", $"expected true or false, got {Show(v)}"));
        }
        if (obj.TryGetPropertyValue("retry_on_node_failure", out v))
        {
            if (v is JsonValue retry && retry.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                o.RetryOnNodeFailure = retry.GetValueKind() == JsonValueKind.True;
            else
                errors.Add(new($"{at}.retry_on_node_failure", $"expected true or false, got {Show(v)}"));
        }
        if (obj.TryGetPropertyValue("max_replicas_per_node", out v) && ReadInt(v, $"{at}.max_replicas_per_node", OptionRules.MaxReplicasPerNode, errors) is { } cap)
            o.MaxReplicasPerNode = cap;
        if (obj.TryGetPropertyValue("node_selector", out v))
        {
            if (v is not JsonObject selector)
                errors.Add(new($"{at}.node_selector", $"expected a mapping of label name to value (e.g. {{zone: a}}), got {Show(v)}"));
            else
            {
                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (label, value) in selector)
                {
                    if (value is JsonValue text && text.GetValueKind() is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
                        labels[label] = text.GetValueKind() == JsonValueKind.String ? text.GetValue<string>() : text.ToJsonString();
                    else
                        errors.Add(new($"{at}.node_selector.{label}", $"expected the label's value as a string, got {Show(value)}"));
                }
                o.NodeSelector = labels;
            }
        }
        if (obj.TryGetPropertyValue("autoscaling_config", out v))
        {
            if (v is null)
                o.Autoscaling = null;
            else if (v is not JsonObject a)
                errors.Add(new($"{at}.autoscaling_config", $"expected a mapping with keys {List(AutoscalingKeys)}, got {Show(v)}"));
            else
                o.Autoscaling = ReadAutoscaling(a, $"{at}.autoscaling_config", errors);
        }
        if (obj.TryGetPropertyValue("resources", out v))
        {
            if (v is not JsonObject resources)
                errors.Add(new($"{at}.resources", $"expected a mapping of resource name to amount, got {Show(v)}"));
            else
            {
                var map = new Dictionary<string, double>(StringComparer.Ordinal);
                foreach (var (key, amount) in resources)
                    if (ReadNumber(amount, $"{at}.resources.{key}", OptionRules.ResourceAmount, errors) is { } a)
                        map[key] = a;
                o.Resources = map;
            }
        }
        if (obj.TryGetPropertyValue("user_config", out v))
        {
            var type = node.Definition.UserConfigType;
            if (v is null)
                o.UserConfig = null;
            else if (type is null)
                o.UserConfig = JsonSerializer.SerializeToElement(v);
            else
            {
                try
                {
                    o.UserConfig = v.Deserialize(type, ArgsJson);
                }
                catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException)
                {
                    errors.Add(new($"{at}.user_config", $"cannot convert {Show(v)} to {type.Name} (the IReconfigurable config type of '{node.DeploymentName}'): {e.Message}"));
                }
            }
        }
        if (errors.Count > before)
            return null;
        try
        {
            o.Validate(node.DeploymentName);
        }
        catch (ArgumentOutOfRangeException e)
        {
            errors.Add(new(KeyPathOf(obj, at, e.ParamName), e.Message.Split(Environment.NewLine)[0].Split(" (Parameter")[0]));
            return null;
        }
        return o;
    }

    /// <summary>
    /// The config key of each <see cref="DeploymentOptions"/> option that validation can name (its ranges live in
    /// <see cref="OptionRules"/>; this is only the map from option names to snake_case keys).
    /// </summary>
    private static readonly Dictionary<string, string> OptionKeys = new(StringComparer.Ordinal)
    {
        [nameof(DeploymentOptions.Name)] = "name",
        [nameof(DeploymentOptions.NumReplicas)] = "num_replicas",
        [nameof(DeploymentOptions.MaxOngoingRequests)] = "max_ongoing_requests",
        [nameof(DeploymentOptions.MaxQueuedRequests)] = "max_queued_requests",
        [nameof(DeploymentOptions.UserConfig)] = "user_config",
        [nameof(DeploymentOptions.NumCpus)] = "num_cpus",
        [nameof(DeploymentOptions.NumGpus)] = "num_gpus",
        [nameof(DeploymentOptions.Resources)] = "resources",
        [nameof(DeploymentOptions.GracefulShutdownTimeout)] = "graceful_shutdown_timeout_s",
        [nameof(DeploymentOptions.Version)] = "version",
        [nameof(DeploymentOptions.RuntimeEnv)] = "runtime_env",
        [nameof(DeploymentOptions.Autoscaling)] = "autoscaling_config",
        [nameof(DeploymentOptions.HealthCheckPeriod)] = "health_check_period_s",
        [nameof(DeploymentOptions.HealthCheckTimeout)] = "health_check_timeout_s",
        [nameof(DeploymentOptions.AllowUnknownJsonProperties)] = "allow_unknown_json_properties",
        [nameof(DeploymentOptions.RetryOnNodeFailure)] = "retry_on_node_failure",
        [nameof(DeploymentOptions.MaxReplicasPerNode)] = "max_replicas_per_node",
        [nameof(DeploymentOptions.NodeSelector)] = "node_selector",
        [nameof(DeploymentOptions.RoutePrefix)] = "route_prefix",
    };

    /// <summary>The config key of each <see cref="AutoscalingOptions"/> setting, under <c>autoscaling_config</c>.</summary>
    private static readonly Dictionary<string, string> AutoscalingOptionKeys = new(StringComparer.Ordinal)
    {
        [nameof(AutoscalingOptions.MinReplicas)] = "min_replicas",
        [nameof(AutoscalingOptions.MaxReplicas)] = "max_replicas",
        [nameof(AutoscalingOptions.InitialReplicas)] = "initial_replicas",
        [nameof(AutoscalingOptions.TargetOngoingRequests)] = "target_ongoing_requests",
        [nameof(AutoscalingOptions.UpscaleDelay)] = "upscale_delay_s",
        [nameof(AutoscalingOptions.DownscaleDelay)] = "downscale_delay_s",
        [nameof(AutoscalingOptions.MetricsInterval)] = "metrics_interval_s",
        [nameof(AutoscalingOptions.LookBackPeriod)] = "look_back_period_s",
    };

    /// <summary>The config key path of a <see cref="DeploymentOptions"/> option named by its validation (NumGpus → num_gpus, Autoscaling.MaxReplicas → autoscaling_config.max_replicas), when the entry sets it.</summary>
    private static string KeyPathOf(JsonObject obj, string at, string? option)
    {
        if (option is null)
            return at;
        if (option.StartsWith("Resources[\"", StringComparison.Ordinal) && option.EndsWith("\"]", StringComparison.Ordinal))
            return $"{at}.resources.{option[11..^2]}";
        var parts = option.Split('.');
        if (!OptionKeys.TryGetValue(parts[0], out var key) || !obj.ContainsKey(key))
            return at;
        var path = $"{at}.{key}";
        if (parts.Length > 1 && obj[key] is JsonObject inner && AutoscalingOptionKeys.TryGetValue(parts[1], out var sub) && inner.ContainsKey(sub))
            path += "." + sub;
        return path;
    }

    private static void CheckKeys(JsonObject obj, string at, string[] allowed, List<ServeConfigError> errors)
    {
        foreach (var (key, _) in obj)
            if (!allowed.Contains(key, StringComparer.Ordinal))
                errors.Add(new(at.Length == 0 ? key : $"{at}.{key}", $"unknown key; allowed keys here are {List(allowed)}"));
    }

    private static AutoscalingOptions? ReadAutoscaling(JsonObject obj, string at, List<ServeConfigError> errors)
    {
        var before = errors.Count;
        CheckKeys(obj, at, AutoscalingKeys, errors);
        var a = new AutoscalingOptions();
        if (obj.TryGetPropertyValue("min_replicas", out var v) && ReadInt(v, $"{at}.min_replicas", OptionRules.MinReplicas, errors) is { } min)
            a.MinReplicas = min;
        if (obj.TryGetPropertyValue("max_replicas", out v) && ReadInt(v, $"{at}.max_replicas", OptionRules.MaxReplicas, errors) is { } max)
            a.MaxReplicas = max;
        if (obj.TryGetPropertyValue("initial_replicas", out v) && v is not null && ReadInt(v, $"{at}.initial_replicas", OptionRules.InitialReplicas, errors) is { } initial)
            a.InitialReplicas = initial;
        if (obj.TryGetPropertyValue("target_ongoing_requests", out v) && ReadNumber(v, $"{at}.target_ongoing_requests", OptionRules.TargetOngoingRequests, errors) is { } target)
            a.TargetOngoingRequests = target;
        if (obj.TryGetPropertyValue("upscale_delay_s", out v) && ReadSeconds(v, $"{at}.upscale_delay_s", OptionRules.UpscaleDelay, errors) is { } up)
            a.UpscaleDelay = up;
        if (obj.TryGetPropertyValue("downscale_delay_s", out v) && ReadSeconds(v, $"{at}.downscale_delay_s", OptionRules.DownscaleDelay, errors) is { } down)
            a.DownscaleDelay = down;
        if (obj.TryGetPropertyValue("metrics_interval_s", out v) && ReadSeconds(v, $"{at}.metrics_interval_s", OptionRules.MetricsInterval, errors) is { } interval)
            a.MetricsInterval = interval;
        if (obj.TryGetPropertyValue("look_back_period_s", out v) && ReadSeconds(v, $"{at}.look_back_period_s", OptionRules.LookBackPeriod, errors) is { } lookBack)
            a.LookBackPeriod = lookBack;
        if (errors.Count == before && a.FindInvalid() is { } bad)
            errors.Add(new(at, $"{bad.Option} {bad.Rule}"));
        return errors.Count > before ? null : a;
    }

    /// <summary><c>shared</c>, <c>isolated</c>, or a mapping: <c>{ directory: path, shared_assemblies: [names], serializer: json|messagepack|host }</c> / <c>{ isolated: true, ... }</c>.</summary>
    private static RuntimeEnv? ReadRuntimeEnv(JsonNode? node, string at, string baseDirectory, List<ServeConfigError> errors)
    {
        const string Expected = "'shared', 'isolated', or a mapping with 'directory' (a build output folder) or 'isolated: true', and optional 'shared_assemblies'";
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.String)
        {
            switch (value.GetValue<string>())
            {
                case "shared": return RuntimeEnv.Shared;
                case "isolated": return RuntimeEnv.Isolated();
                default:
                    errors.Add(new(at, $"expected {Expected}, got {Show(node)}"));
                    return null;
            }
        }
        if (node is not JsonObject obj)
        {
            errors.Add(new(at, $"expected {Expected}, got {Show(node)}"));
            return null;
        }
        var before = errors.Count;
        CheckKeys(obj, at, RuntimeEnvKeys, errors);
        var shared = new List<string>();
        if (obj.TryGetPropertyValue("shared_assemblies", out var list))
        {
            if (list is not JsonArray names)
                errors.Add(new($"{at}.shared_assemblies", $"expected a list of assembly names, got {Show(list)}"));
            else
            {
                for (var i = 0; i < names.Count; i++)
                {
                    if (ReadString(names[i], $"{at}.shared_assemblies[{i}]", errors) is { } name)
                    {
                        if (string.IsNullOrWhiteSpace(name) || name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
                            errors.Add(new($"{at}.shared_assemblies[{i}]", $"expected a simple assembly name such as MyCompany.Contracts (no path, no .dll), got \"{name}\""));
                        else
                            shared.Add(name);
                    }
                }
            }
        }
        var isolated = obj.TryGetPropertyValue("isolated", out var flag) && flag is JsonValue f && f.GetValueKind() == JsonValueKind.True;
        if (flag is not null && !(flag is JsonValue g && g.GetValueKind() is JsonValueKind.True or JsonValueKind.False))
            errors.Add(new($"{at}.isolated", $"expected true or false, got {Show(flag)}"));
        string? directory = null;
        if (obj.TryGetPropertyValue("directory", out var dir) && ReadString(dir, $"{at}.directory", errors) is { } d)
        {
            directory = Path.GetFullPath(Path.Combine(baseDirectory, d));
            if (!Directory.Exists(directory))
                errors.Add(new($"{at}.directory", $"folder not found: {directory}; build the deployment's project into it (dotnet build -o <folder>)"));
        }
        var format = BoundaryFormat.HostDefault;
        if (obj.TryGetPropertyValue("serializer", out var serializer) && ReadString(serializer, $"{at}.serializer", errors) is { } name2)
        {
            switch (name2)
            {
                case "json": format = BoundaryFormat.Json; break;
                case "messagepack": format = BoundaryFormat.MessagePack; break;
                case "host": break;
                default:
                    errors.Add(new($"{at}.serializer", $"expected 'json', 'messagepack' or 'host' (the host's BoundarySerializer, the default), got \"{name2}\""));
                    break;
            }
        }
        if (directory is null && !isolated && errors.Count == before)
            errors.Add(new(at, $"expected {Expected}; set 'directory' or 'isolated: true'"));
        if (errors.Count > before)
            return null;
        var env = directory is not null ? RuntimeEnv.FromDirectory(directory, [.. shared]) : RuntimeEnv.Isolated([.. shared]);
        return format == BoundaryFormat.HostDefault ? env : env.WithBoundaryFormat(format);
    }

    private static string? ReadString(JsonNode? node, string at, List<ServeConfigError> errors)
    {
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.String)
            return value.GetValue<string>();
        errors.Add(new(at, $"expected a string, got {Show(node)}"));
        return null;
    }

    private static int? ReadInt(JsonNode? node, string at, int min, int max, string expected, List<ServeConfigError> errors)
    {
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<int>(out var i) && i >= min && i <= max)
            return i;
        if (node is JsonValue v2 && v2.GetValueKind() == JsonValueKind.Number && v2.TryGetValue<double>(out var d) && d == Math.Floor(d) && d >= min && d <= max)
            return (int)d;
        var atMost = expected.Contains(max.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal) ? "" : AtMost(node, max);
        errors.Add(new(at, $"expected {expected}{atMost}, got {Show(node)}"));
        return null;
    }

    /// <summary>An integer in the range of <paramref name="rule"/> (the shared <see cref="OptionRules"/> table).</summary>
    private static int? ReadInt(JsonNode? node, string at, OptionRule rule, List<ServeConfigError> errors) =>
        ReadInt(node, at, (int)rule.Min, (int)Math.Min(rule.Max, int.MaxValue), rule.Expected, errors);

    /// <summary>A duration option's seconds: above or from 0 as <paramref name="rule"/> says, and at most 49 days (a longer one could not be a <see cref="TimeSpan"/> a timer takes).</summary>
    private static TimeSpan? ReadSeconds(JsonNode? node, string at, OptionRule rule, List<ServeConfigError> errors) =>
        ReadSeconds(node, at, allowZero: !rule.MinExclusive, errors);

    /// <summary>A duration in seconds: above 0 (or 0 too, with <paramref name="allowZero"/>) and at most 49 days, the longest a .NET timer waits.</summary>
    private static TimeSpan? ReadSeconds(JsonNode? node, string at, bool allowZero, List<ServeConfigError> errors)
    {
        var max = OptionRules.MaxTimerSeconds;
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<double>(out var d)
            && (allowZero ? d >= 0 : d > 0) && d <= max)
            return TimeSpan.FromSeconds(d);
        errors.Add(new(at, $"expected a number of seconds {(allowZero ? "of 0 or more" : "above 0")}, at most {Math.Floor(max).ToString(CultureInfo.InvariantCulture)} (49 days), got {Show(node)}"));
        return null;
    }

    /// <summary>A number in the range of <paramref name="rule"/> (the shared <see cref="OptionRules"/> table).</summary>
    private static double? ReadNumber(JsonNode? node, string at, OptionRule rule, List<ServeConfigError> errors)
    {
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<double>(out var d) && rule.Accepts(d))
            return d;
        errors.Add(new(at, $"expected {rule.Expected}{(rule.Max < double.MaxValue ? AtMost(node, rule.Max) : "")}, got {Show(node)}"));
        return null;
    }

    /// <summary>", at most N" when <paramref name="node"/> is a number above <paramref name="max"/> (the shared DeploymentOptions limits).</summary>
    private static string AtMost(JsonNode? node, double max) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && !(value.TryGetValue<double>(out var d) && d <= max)
            ? $", at most {max.ToString(max >= 1e6 ? "0.#####e0" : "0.#####", CultureInfo.InvariantCulture)}"
            : "";

    private static string List(string[] keys) => string.Join(", ", keys);

    private static string Show(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "a mapping",
        JsonArray => "a list",
        _ => node.ToJsonString(),
    };
}
