using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Serve.Cli;

/// <summary>
/// <c>serve deploy</c>, <c>serve status</c> and <c>serve shutdown</c>: clients of a running host's admin API
/// (default <c>http://127.0.0.1:8265</c>).
/// </summary>
public static class AdminCommands
{
    /// <summary>The admin API address <c>serve run</c> listens on by default.</summary>
    public const string DefaultAddress = "http://127.0.0.1:8265";

    /// <summary>Exit code: done.</summary>
    public const int Ok = 0;
    /// <summary>Exit code: the host is unreachable, refused the request, or an application failed to deploy.</summary>
    public const int Failed = 1;
    /// <summary>Exit code: the config is invalid (or the file is missing); nothing changed.</summary>
    public const int InvalidConfig = 2;

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromMinutes(10);

    /// <summary><c>serve deploy &lt;config&gt;</c>: PUTs the config to the host (declarative: applications not listed are removed).</summary>
    public static async Task<int> DeployAsync(string configPath, string? address, string? token, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        if (!File.Exists(configPath))
        {
            await error.WriteLineAsync($"error: {configPath}: file not found (looked for {Path.GetFullPath(configPath)})").ConfigureAwait(false);
            return InvalidConfig;
        }
        if (new FileInfo(configPath).Length is var length && length > Config.ServeConfigLoader.MaxDocumentBytes)
        {
            await error.WriteLineAsync($"error: invalid config; nothing was changed{Environment.NewLine}{configPath}: $: the file is {length.ToString("N0", CultureInfo.InvariantCulture)} bytes; a config may be at most {Config.ServeConfigLoader.MaxDocumentBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes (4 MiB)").ConfigureAwait(false);
            return InvalidConfig;
        }
        var text = await File.ReadAllTextAsync(configPath, cancellationToken).ConfigureAwait(false);
        var yaml = Path.GetExtension(configPath).ToLowerInvariant() is ".yaml" or ".yml";
        var content = new StringContent(text, Encoding.UTF8, yaml ? "application/yaml" : "application/json");
        var (code, body) = await SendAsync(HttpMethod.Put, "api/serve/applications", content, address, token, error, cancellationToken).ConfigureAwait(false);
        if (code is null)
            return Failed;
        if (code == HttpStatusCode.RequestEntityTooLarge)
        {
            await error.WriteLineAsync($"error: invalid config; nothing was changed{Environment.NewLine}{configPath}: {body?["message"]?.GetValue<string>()}").ConfigureAwait(false);
            return InvalidConfig;
        }
        if (code == HttpStatusCode.BadRequest)
        {
            var message = body?["message"]?.GetValue<string>() ?? "invalid config";
            await error.WriteLineAsync($"error: invalid config; nothing was changed{Environment.NewLine}{message.Replace("request body:", configPath + ":", StringComparison.Ordinal)}").ConfigureAwait(false);
            return InvalidConfig;
        }
        if (code != HttpStatusCode.OK)
            return await FailAsync(code.Value, body, error).ConfigureAwait(false);
        await output.WriteLineAsync($"Deployed {configPath}.").ConfigureAwait(false);
        await WriteTableAsync(body, output).ConfigureAwait(false);
        return Ok;
    }

    /// <summary>
    /// <c>serve status</c>: prints applications, deployments, replica counts and states, and the reason a deployment is not
    /// healthy, as a table (coloured only when <paramref name="output"/> is the console and a terminal).
    /// </summary>
    public static async Task<int> StatusAsync(string? address, string? token, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var (code, body) = await SendAsync(HttpMethod.Get, "api/serve/applications", null, address, token, error, cancellationToken).ConfigureAwait(false);
        if (code is null)
            return Failed;
        if (code != HttpStatusCode.OK)
            return await FailAsync(code.Value, body, error).ConfigureAwait(false);
        await WriteTableAsync(body, output).ConfigureAwait(false);
        return Ok;
    }

    /// <summary><c>serve status --json</c>: prints the admin API's status document (<c>GET /api/serve/applications</c>) as it is.</summary>
    public static async Task<int> StatusJsonAsync(string? address, string? token, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var (code, body) = await SendAsync(HttpMethod.Get, "api/serve/applications", null, address, token, error, cancellationToken).ConfigureAwait(false);
        if (code is null)
            return Failed;
        if (code != HttpStatusCode.OK)
            return await FailAsync(code.Value, body, error).ConfigureAwait(false);
        await output.WriteLineAsync(body?.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) ?? "{}").ConfigureAwait(false);
        return Ok;
    }

    /// <summary><c>serve shutdown</c>: asks the host to shut down gracefully (a <c>serve run</c> process then exits 0).</summary>
    public static async Task<int> ShutdownAsync(string? address, string? token, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var (code, body) = await SendAsync(HttpMethod.Post, "api/serve/shutdown", null, address, token, error, cancellationToken).ConfigureAwait(false);
        if (code is null)
            return Failed;
        if (code != HttpStatusCode.Accepted)
            return await FailAsync(code.Value, body, error).ConfigureAwait(false);
        await output.WriteLineAsync("Shutdown requested: the host finishes in-flight requests and stops.").ConfigureAwait(false);
        return Ok;
    }

    private static async Task<(HttpStatusCode? Code, JsonNode? Body)> SendAsync(HttpMethod method, string path, HttpContent? content,
        string? address, string? token, TextWriter error, CancellationToken cancellationToken)
    {
        address ??= DefaultAddress;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var baseAddress) || (baseAddress.Scheme != Uri.UriSchemeHttp && baseAddress.Scheme != Uri.UriSchemeHttps))
        {
            await error.WriteLineAsync($"error: --address '{address}' is not an http:// URL; use e.g. {DefaultAddress}").ConfigureAwait(false);
            return (null, null);
        }
        var display = baseAddress.GetLeftPart(UriPartial.Authority);
        using var http = new HttpClient { BaseAddress = new Uri(display + "/"), Timeout = RequestTimeout };
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (!string.IsNullOrEmpty(token))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        try
        {
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            JsonNode? body = null;
            try
            {
                body = text.Length == 0 ? null : JsonNode.Parse(text);
            }
            catch (JsonException)
            {
                body = new JsonObject { ["message"] = text };
            }
            return (response.StatusCode, body);
        }
        catch (HttpRequestException)
        {
            await error.WriteLineAsync($"error: no Serve host answers at {display}; start one with `serve run`").ConfigureAwait(false);
            return (null, null);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync($"error: the Serve host at {display} did not answer within {RequestTimeout.TotalMinutes} minutes").ConfigureAwait(false);
            return (null, null);
        }
    }

    private static async Task<int> FailAsync(HttpStatusCode code, JsonNode? body, TextWriter error)
    {
        var message = body?["message"]?.GetValue<string>() ?? "";
        var hint = code == HttpStatusCode.Unauthorized ? " (pass the host's admin access token with --token)" : "";
        await error.WriteLineAsync($"error: the host answered {(int)code} {code}: {message}{hint}").ConfigureAwait(false);
        return Failed;
    }

    /// <summary>
    /// Writes the status document as a table: one row per application, then one per deployment with its replicas
    /// (running/target), their states, its runtime environment, and the reason it is not healthy. A cluster's status
    /// (multi-node Serve: the document has <c>nodes</c>) also gets a table of the nodes, named n1, n2, … in node-id
    /// order, and each deployment's replica states say which node runs them (<c>2 RUNNING @n1, 1 STARTING @n3</c>).
    /// </summary>
    internal static Task WriteTableAsync(JsonNode? status, TextWriter output)
    {
        var apps = status?["applications"]?.AsArray() ?? [];
        var console = Terminal.For(output);
        var nodes = (status?["nodes"]?.AsArray() ?? []).Where(n => n is not null).OrderBy(n => Str(n!["node_id"]), StringComparer.Ordinal).ToList();
        var shortNames = nodes.Select((n, i) => (Id: Str(n!["node_id"]), Name: $"n{i + 1}")).ToDictionary(p => p.Id, p => p.Name, StringComparer.Ordinal);
        if (apps.Count == 0)
            console.WriteLine("No applications are running.");
        else
        {
            var table = new Table().Border(Terminal.Border(output));
            foreach (var header in new[] { "Application", "Deployment", "Status", "Replicas", "Replica states", "Env", "Reason" })
                table.AddColumn(new TableColumn(new Text(header, new Style(decoration: Decoration.Bold))));
            foreach (var app in apps)
            {
                var appStatus = Str(app?["status"]);
                table.AddRow(new Text(Str(app?["name"]), new Style(decoration: Decoration.Bold)), Text.Empty, Terminal.Status(appStatus), Text.Empty, Text.Empty,
                    Text.Empty, Text.Empty);
                foreach (var d in app?["deployments"]?.AsArray() ?? [])
                {
                    var replicas = d?["replicas"]?.AsArray() ?? [];
                    var states = shortNames.Count == 0
                        ? replicas.GroupBy(r => Str(r?["state"]), StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}")
                        : replicas.GroupBy(r => (State: Str(r?["state"]), Node: shortNames.GetValueOrDefault(Str(r?["node"])) ?? Str(r?["node"])))
                            .OrderBy(g => g.Key.Node, StringComparer.Ordinal).ThenBy(g => g.Key.State, StringComparer.Ordinal)
                            .Select(g => $"{g.Count()} {g.Key.State} @{g.Key.Node}");
                    table.AddRow(Text.Empty, new Text(Str(d?["name"])), Terminal.Status(Str(d?["status"])),
                        new Text($"{d?["running_replicas"]}/{d?["target_replicas"]}"), new Text(string.Join(", ", states)),
                        new Text(Str(d?["runtime_env"])), new Text(OneLine(Str(d?["message"])), Terminal.StatusStyle(Str(d?["status"]))));
                }
            }
            console.Write(table);
        }
        if (nodes.Count > 0)
        {
            var table = new Table().Border(Terminal.Border(output));
            foreach (var header in new[] { "Node", "Address", "State", "CPUs", "GPUs", "Labels", "Replicas", "Notes" })
                table.AddColumn(new TableColumn(new Text(header, new Style(decoration: Decoration.Bold))));
            var perNode = apps.SelectMany(a => a?["deployments"]?.AsArray() ?? []).SelectMany(d => d?["replicas"]?.AsArray() ?? [])
                .GroupBy(r => Str(r?["node"]), StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            foreach (var n in nodes)
            {
                var id = Str(n!["node_id"]);
                var labels = (n["labels"] as JsonObject ?? []).Select(l => $"{l.Key}={Str(l.Value)}");
                var notes = new List<string>();
                if (n["is_controller"]?.GetValue<bool>() == true) notes.Add("controller");
                if (n["is_self"]?.GetValue<bool>() == true) notes.Add("this node");
                if (Str(n["message"]) is { Length: > 0 } message) notes.Add(OneLine(message));
                table.AddRow(new Text(shortNames[id]), new Text(id), new Text(Str(n["state"])), new Text(n["cpus"]?.ToJsonString() ?? ""),
                    new Text((n["gpus"]?.AsArray().Count ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    new Text(string.Join(", ", labels)), new Text(perNode.GetValueOrDefault(id).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    new Text(string.Join("; ", notes)));
            }
            console.Write(table);
        }
        return output.FlushAsync();
    }

    private static string Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
