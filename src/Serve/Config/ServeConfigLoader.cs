using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serve.Config;

/// <summary>
/// Loads a Serve config file (YAML <c>.yaml</c>/<c>.yml</c>, or <c>.json</c>), validates every key, imports each
/// application's assembly, binds its <c>args</c> and applies its deployment overrides. Any problem throws
/// <see cref="ServeConfigException"/> before anything is deployed.
/// </summary>
public static class ServeConfigLoader
{
    private static readonly string[] TopKeys = ["http", "applications"];
    private static readonly string[] HttpKeys = ["host", "port", "request_timeout_s"];
    private static readonly string[] AppKeys = ["name", "route_prefix", "import", "args", "deployments"];
    private static readonly string[] DeploymentKeys =
        ["name", "num_replicas", "max_ongoing_requests", "max_queued_requests", "user_config", "num_cpus", "num_gpus",
         "resources", "graceful_shutdown_timeout_s", "version", "runtime_env", "autoscaling_config", "health_check_period_s",
         "health_check_timeout_s", "allow_unknown_json_properties"];
    private static readonly string[] AutoscalingKeys =
        ["min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests", "upscale_delay_s", "downscale_delay_s",
         "metrics_interval_s", "look_back_period_s"];
    private static readonly string[] RuntimeEnvKeys = ["isolated", "directory", "shared_assemblies"];

    private static readonly JsonSerializerOptions ArgsJson = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// The largest config document read, in bytes (4 MiB): a bigger file is refused before it is read, and the admin
    /// API answers a bigger <c>PUT</c> body with 413. Within it a document may nest at most 64 levels of mappings and
    /// lists and hold at most 100,000 values, counting every value a YAML alias repeats.
    /// </summary>
    public const int MaxDocumentBytes = 4 * 1024 * 1024;

    /// <summary>The deepest nesting of mappings and lists a config document may have.</summary>
    public const int MaxDepth = ConfigDocument.MaxDepth;

    /// <summary>The most values (scalars, mappings, lists) a config document may hold, counting each YAML alias expansion.</summary>
    public const int MaxValues = ConfigDocument.MaxNodes;

    /// <summary>Loads and validates a config file; relative <c>import</c> paths are relative to the file's folder.</summary>
    /// <exception cref="ServeConfigException">The file is missing or invalid; the message names the file, key path and reason.</exception>
    public static ServeConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new ServeConfigException(path, [new ServeConfigError("$", $"file not found (looked for {Path.GetFullPath(path)})")]);
        var length = new FileInfo(path).Length;
        if (length > MaxDocumentBytes)
            throw new ServeConfigException(path, [new ServeConfigError("$", TooLarge(length))]);
        var text = File.ReadAllText(path);
        var extension = Path.GetExtension(path).ToLowerInvariant();
        var baseDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return extension switch
        {
            ".yaml" or ".yml" => Parse(text, path, yaml: true, baseDirectory),
            ".json" => Parse(text, path, yaml: false, baseDirectory),
            _ => throw new ServeConfigException(path, [new ServeConfigError("$", $"unknown file type '{extension}'; use .yaml, .yml or .json")]),
        };
    }

    /// <summary>Builds a one-application config (named <c>"default"</c>) from an import target <c>Assembly.dll:Namespace.Type.Method</c>.</summary>
    /// <exception cref="ServeConfigException">The assembly, type or method cannot be found, or the method needs arguments.</exception>
    public static ServeConfig FromImport(string import)
    {
        ArgumentException.ThrowIfNullOrEmpty(import);
        var root = new JsonObject { ["applications"] = new JsonArray(new JsonObject { ["import"] = import }) };
        return Build(root, import, Directory.GetCurrentDirectory());
    }

    /// <summary>
    /// Loads and validates a config document given as text (e.g. the body of an admin <c>PUT</c>); relative
    /// <c>import</c> paths are relative to <paramref name="baseDirectory"/> (default: the current directory).
    /// </summary>
    /// <param name="text">The document.</param>
    /// <param name="source">The name used in error messages instead of a file name.</param>
    /// <param name="yaml">True for YAML, false for JSON.</param>
    /// <param name="baseDirectory">Where relative <c>import</c> paths start.</param>
    /// <exception cref="ServeConfigException">The document is invalid; the message names the source, key path and reason.</exception>
    public static ServeConfig LoadText(string text, string source, bool yaml, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentException.ThrowIfNullOrEmpty(source);
        return Parse(text, source, yaml, baseDirectory ?? Directory.GetCurrentDirectory());
    }

    internal static ServeConfig Parse(string text, string file, bool yaml, string baseDirectory)
    {
        if (text.Length > MaxDocumentBytes)
            throw new ServeConfigException(file, [new ServeConfigError("$", TooLarge(System.Text.Encoding.UTF8.GetByteCount(text)))]);
        JsonNode? root;
        try
        {
            root = yaml ? ConfigDocument.ParseYaml(text) : ConfigDocument.ParseJson(text);
        }
        catch (ConfigDocumentException e)
        {
            throw new ServeConfigException(file, [new ServeConfigError(e.Path, e.Message)]);
        }
        return Build(root, file, baseDirectory);
    }

    internal static string TooLarge(long size) =>
        $"the document is {size.ToString("N0", CultureInfo.InvariantCulture)} bytes; a config may be at most {MaxDocumentBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes (4 MiB)";

    private static ServeConfig Build(JsonNode? root, string file, string baseDirectory)
    {
        var errors = new List<ServeConfigError>();
        var http = new HttpConfig();
        var apps = new List<ApplicationConfig>();
        if (root is not JsonObject top)
        {
            errors.Add(new("$", $"expected a mapping with keys {List(TopKeys)}, got {Show(root)}"));
            throw new ServeConfigException(file, errors);
        }
        CheckKeys(top, "", TopKeys, errors);
        if (top["http"] is { } httpNode)
            http = ReadHttp(httpNode, "http", errors);
        if (!top.TryGetPropertyValue("applications", out var appsNode) || appsNode is null)
            errors.Add(new("applications", "missing; list at least one application with an 'import'"));
        else if (appsNode is not JsonArray appArray)
            errors.Add(new("applications", $"expected a list of applications, got {Show(appsNode)}"));
        else
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            var prefixes = new Dictionary<string, (string Name, string At)>(StringComparer.Ordinal);
            for (var i = 0; i < appArray.Count; i++)
            {
                var at = $"applications[{i}]";
                if (ReadApplication(appArray[i], at, baseDirectory, errors) is not { } app)
                    continue;
                if (!names.Add(app.Name))
                    errors.Add(new($"{at}.name", $"application name \"{app.Name}\" is used twice; give each application its own name"));
                // Compared as served: "/a" and "/a/" are one prefix, and an application without route_prefix is
                // served under its ingress deployment's RoutePrefix, else "/".
                var served = app.ServedRoutePrefix;
                if (prefixes.TryGetValue(served, out var first))
                    errors.Add(new(app.RoutePrefix is null ? at : $"{at}.route_prefix",
                        $"application \"{app.Name}\" would be served under route prefix \"{served}\"{(app.RoutePrefix is null ? " (no route_prefix given)" : "")}, " +
                        $"which application \"{first.Name}\" ({first.At}) already uses; give each application its own route_prefix"));
                else
                    prefixes.Add(served, (app.Name, at));
                apps.Add(app);
            }
        }
        if (errors.Count > 0)
            throw new ServeConfigException(file, errors);
        return new ServeConfig(file, http, apps);
    }

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

    private static ApplicationConfig? ReadApplication(JsonNode? node, string at, string baseDirectory, List<ServeConfigError> errors)
    {
        if (node is not JsonObject obj)
        {
            errors.Add(new(at, $"expected a mapping with keys {List(AppKeys)}, got {Show(node)}"));
            return null;
        }
        var before = errors.Count;
        CheckKeys(obj, at, AppKeys, errors);
        var name = RunOptions.DefaultName;
        if (obj.TryGetPropertyValue("name", out var n) && ReadString(n, $"{at}.name", errors) is { } givenName)
        {
            if (string.IsNullOrWhiteSpace(givenName))
                errors.Add(new($"{at}.name", "must not be empty"));
            name = givenName;
        }
        string? prefix = null;
        if (obj.TryGetPropertyValue("route_prefix", out var r) && ReadString(r, $"{at}.route_prefix", errors) is { } givenPrefix)
        {
            if (Routing.RoutePrefixes.Problem(givenPrefix) is { } problem)
                errors.Add(new($"{at}.route_prefix", $"application \"{name}\": \"{givenPrefix}\" is not a route prefix: it {problem}"));
            prefix = Routing.RoutePrefixes.Normalize(givenPrefix);
        }
        obj.TryGetPropertyValue("args", out var args);
        if (args is not null and not JsonObject and not JsonArray)
            errors.Add(new($"{at}.args", $"expected a mapping of builder parameter names to values (or a list of values), got {Show(args)}"));

        string? import = null;
        if (!obj.TryGetPropertyValue("import", out var i) || i is null)
            errors.Add(new($"{at}.import", "missing; set it to 'path/to/Assembly.dll:Namespace.Type.Method'"));
        else
            import = ReadString(i, $"{at}.import", errors);

        Application? application = null;
        if (import is not null && errors.Count == before)
            application = Import(import, args, $"{at}.import", $"{at}.args", baseDirectory, errors);

        if (obj.TryGetPropertyValue("deployments", out var d) && d is not null)
        {
            if (d is not JsonArray list)
                errors.Add(new($"{at}.deployments", $"expected a list of deployment overrides, got {Show(d)}"));
            else if (application is not null)
                application = ApplyOverrides(application, list, $"{at}.deployments", baseDirectory, errors);
        }
        if (prefix is null && application is not null && application.OptionsNoCopy.RoutePrefix is { } own)
        {
            // The ingress's own RoutePrefix (attribute or override) was validated with its options.
            if (Routing.RoutePrefixes.Problem(own) is { } problem)
                errors.Add(new(at, $"application \"{name}\": the RoutePrefix of its ingress deployment '{application.DeploymentName}', \"{own}\", is not a route prefix: it {problem}; set route_prefix"));
        }
        return errors.Count == before && application is not null
            ? new ApplicationConfig(name, prefix, import!, args, application)
            : null;
    }

    private static Application? Import(string import, JsonNode? args, string at, string argsAt, string baseDirectory, List<ServeConfigError> errors)
    {
        var colon = import.LastIndexOf(':');
        if (colon <= 0 || colon == import.Length - 1 || import.IndexOf('.', colon) < 0 || import.Length - colon < 4 || import[(colon + 1)..].Contains('\\') || import[(colon + 1)..].Contains('/'))
        {
            errors.Add(new(at, $"expected 'path/to/Assembly.dll:Namespace.Type.Method', got \"{import}\""));
            return null;
        }
        var assemblyPath = Path.GetFullPath(Path.Combine(baseDirectory, import[..colon]));
        var member = import[(colon + 1)..];
        var dot = member.LastIndexOf('.');
        if (dot <= 0 || dot == member.Length - 1)
        {
            errors.Add(new(at, $"expected 'Namespace.Type.Method' after the ':', got \"{member}\""));
            return null;
        }
        var typeName = member[..dot];
        var methodName = member[(dot + 1)..];
        if (!File.Exists(assemblyPath))
        {
            errors.Add(new(at, $"assembly not found: {assemblyPath}"));
            return null;
        }
        Assembly assembly;
        try
        {
            assembly = Assembly.LoadFrom(assemblyPath);
            RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException or IOException or TypeInitializationException)
        {
            errors.Add(new(at, $"cannot load assembly {assemblyPath}: {e.Message}"));
            return null;
        }
        var type = assembly.GetType(typeName, throwOnError: false);
        if (type is null)
        {
            errors.Add(new(at, $"type '{typeName}' not found in {assemblyPath}; use the full name, Namespace.Type (Outer+Inner for a nested type)"));
            return null;
        }
        var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.Name == methodName && typeof(Application).IsAssignableFrom(m.ReturnType) && !m.ContainsGenericParameters)
            .ToArray();
        if (methods.Length == 0)
        {
            var candidates = type.GetMethods(BindingFlags.Public | BindingFlags.Static)
                .Where(m => typeof(Application).IsAssignableFrom(m.ReturnType)).Select(m => m.Name).Distinct().Order().ToArray();
            errors.Add(new(at, $"no public static method '{methodName}' returning Serve.Application in {type.FullName} ({assemblyPath}); " +
                               (candidates.Length > 0 ? $"builders there: {string.Join(", ", candidates)}" : "the type has no public static method returning an Application")));
            return null;
        }
        if (methods.Length > 1)
        {
            errors.Add(new(at, $"{type.FullName}.{methodName} has {methods.Length} overloads; give the builder a unique name"));
            return null;
        }
        var method = methods[0];
        if (BindArguments(method, args, argsAt, errors) is not { } arguments)
            return null;
        try
        {
            return (Application?)method.Invoke(null, arguments)
                   ?? throw new InvalidOperationException($"{type.FullName}.{methodName} returned null");
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidOperationException or ArgumentException)
        {
            var inner = e is TargetInvocationException { InnerException: { } x } ? x : e;
            errors.Add(new(at, $"{type.FullName}.{methodName} threw {inner.GetType().Name}: {inner.Message}"));
            return null;
        }
    }

    private static object?[]? BindArguments(MethodInfo method, JsonNode? args, string at, List<ServeConfigError> errors)
    {
        var parameters = method.GetParameters();
        var values = new object?[parameters.Length];
        var signature = $"{method.DeclaringType?.Name}.{method.Name}({string.Join(", ", parameters.Select(p => $"{p.ParameterType.Name} {p.Name}"))})";
        var before = errors.Count;
        if (args is JsonArray list)
        {
            if (list.Count > parameters.Length)
                errors.Add(new(at, $"{list.Count} values given but {signature} takes {parameters.Length}"));
            for (var i = 0; i < parameters.Length; i++)
                values[i] = i < list.Count ? Convert(list[i], parameters[i], $"{at}[{i}]", errors) : Missing(parameters[i], at, signature, errors);
            return errors.Count == before ? values : null;
        }
        var obj = args as JsonObject ?? [];
        foreach (var (key, _) in obj)
            if (!parameters.Any(p => string.Equals(p.Name, key, StringComparison.OrdinalIgnoreCase)))
                errors.Add(new($"{at}.{key}", $"unknown argument; {signature} takes {(parameters.Length == 0 ? "no arguments" : string.Join(", ", parameters.Select(p => p.Name)))}"));
        for (var i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            var found = obj.FirstOrDefault(kv => string.Equals(kv.Key, p.Name, StringComparison.Ordinal));
            if (found.Key is null)
                found = obj.FirstOrDefault(kv => string.Equals(kv.Key, p.Name, StringComparison.OrdinalIgnoreCase));
            values[i] = found.Key is null ? Missing(p, at, signature, errors) : Convert(found.Value, p, $"{at}.{found.Key}", errors);
        }
        return errors.Count == before ? values : null;
    }

    private static object? Missing(ParameterInfo p, string at, string signature, List<ServeConfigError> errors)
    {
        if (p.HasDefaultValue)
            return p.DefaultValue;
        errors.Add(new($"{at}.{p.Name}", $"missing; {signature} requires it"));
        return null;
    }

    private static object? Convert(JsonNode? value, ParameterInfo p, string at, List<ServeConfigError> errors)
    {
        try
        {
            return value is null ? (p.ParameterType.IsValueType && Nullable.GetUnderlyingType(p.ParameterType) is null ? throw new JsonException("null is not allowed") : null)
                : value.Deserialize(p.ParameterType, ArgsJson);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or FormatException)
        {
            errors.Add(new(at, $"cannot convert {Show(value)} to {p.ParameterType.Name} (parameter '{p.Name}'): {e.Message}"));
            return null;
        }
    }

    private static Application? ApplyOverrides(Application application, JsonArray list, string at, string baseDirectory, List<ServeConfigError> errors)
    {
        var nodes = application.Nodes().ToList();
        var byName = nodes.GroupBy(n => n.DeploymentName, StringComparer.Ordinal).ToDictionary(g => g.Key, StringComparer.Ordinal);
        var known = string.Join(", ", byName.Keys.Order(StringComparer.Ordinal));
        var overrides = new Dictionary<string, (JsonObject Node, string At)>(StringComparer.Ordinal);
        var before = errors.Count;
        for (var i = 0; i < list.Count; i++)
        {
            var dat = $"{at}[{i}]";
            if (list[i] is not JsonObject obj)
            {
                errors.Add(new(dat, $"expected a mapping with keys {List(DeploymentKeys)}, got {Show(list[i])}"));
                continue;
            }
            CheckKeys(obj, dat, DeploymentKeys, errors);
            if (!obj.TryGetPropertyValue("name", out var n) || n is null)
            {
                errors.Add(new($"{dat}.name", $"missing; name one of the application's deployments: {known}"));
                continue;
            }
            if (ReadString(n, $"{dat}.name", errors) is not { } name)
                continue;
            if (!byName.ContainsKey(name))
                errors.Add(new($"{dat}.name", $"no deployment \"{name}\" in this application; its deployments are: {known}"));
            else if (!overrides.TryAdd(name, (obj, dat)))
                errors.Add(new($"{dat}.name", $"deployment \"{name}\" is listed twice; merge its overrides into one entry"));
        }
        var options = new Dictionary<Application, DeploymentOptions>(ReferenceEqualityComparer.Instance);
        foreach (var (name, (obj, dat)) in overrides)
            foreach (var node in byName[name])
                if (Override(node, obj, dat, baseDirectory, errors) is { } o)
                    options[node] = o;
        if (errors.Count > before)
            return null;
        return application.RewriteOptions(node => options.TryGetValue(node, out var o) ? o : node.GetOptions());
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

    /// <summary><c>shared</c>, <c>isolated</c>, or a mapping: <c>{ directory: path, shared_assemblies: [names] }</c> / <c>{ isolated: true, ... }</c>.</summary>
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
        if (directory is null && !isolated && errors.Count == before)
            errors.Add(new(at, $"expected {Expected}; set 'directory' or 'isolated: true'"));
        if (errors.Count > before)
            return null;
        return directory is not null ? RuntimeEnv.FromDirectory(directory, [.. shared]) : RuntimeEnv.Isolated([.. shared]);
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
