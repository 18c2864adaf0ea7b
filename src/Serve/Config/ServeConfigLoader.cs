using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serve.Config;

/// <summary>
/// Loads a Serve config file (YAML <c>.yaml</c>/<c>.yml</c>, or <c>.json</c>), validates every key, imports each
/// application's assembly, binds its <c>args</c> and applies its deployment overrides. Any problem throws
/// <see cref="ServeConfigException"/> before anything is deployed.
/// </summary>
// ConfigDocument.cs reads the YAML/JSON document; this file holds the entry points and the top level;
// ServeConfigLoader.Keys.cs reads and checks keys (deployment option ranges come from OptionRules);
// ServeConfigLoader.Import.cs imports applications and applies their deployment overrides;
// ServeConfigLoader.Cluster.cs reads the cluster section.
public static partial class ServeConfigLoader
{
    private static readonly string[] TopKeys = ["http", "applications", "cluster"];
    private static readonly string[] HttpKeys = ["host", "port", "request_timeout_s"];
    private static readonly string[] AppKeys = ["name", "route_prefix", "import", "args", "deployments"];
    private static readonly string[] DeploymentKeys =
        ["name", "num_replicas", "max_ongoing_requests", "max_queued_requests", "user_config", "num_cpus", "num_gpus",
         "resources", "graceful_shutdown_timeout_s", "version", "runtime_env", "autoscaling_config", "health_check_period_s",
         "health_check_timeout_s", "allow_unknown_json_properties", "retry_on_node_failure",
         "max_replicas_per_node", "node_selector"];
    private static readonly string[] AutoscalingKeys =
        ["min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests", "upscale_delay_s", "downscale_delay_s",
         "metrics_interval_s", "look_back_period_s"];
    private static readonly string[] RuntimeEnvKeys = ["isolated", "directory", "shared_assemblies", "serializer"];

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
        ClusterConfig? cluster = null;
        if (top.TryGetPropertyValue("cluster", out var clusterNode))
            cluster = ReadCluster(clusterNode, "cluster", errors);
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
        return new ServeConfig(file, http, apps) { Cluster = cluster };
    }
}
