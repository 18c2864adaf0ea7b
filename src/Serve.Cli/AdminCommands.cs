using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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

    /// <summary><c>serve status</c>: prints applications, deployments and replica counts as a table.</summary>
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

    /// <summary>Writes the status document as a padded table: application, deployment, status, replicas (running/target), runtime environment, message.</summary>
    internal static async Task WriteTableAsync(JsonNode? status, TextWriter output)
    {
        var rows = new List<string[]> { new[] { "APPLICATION", "DEPLOYMENT", "STATUS", "REPLICAS", "ENV", "MESSAGE" } };
        foreach (var app in status?["applications"]?.AsArray() ?? [])
        {
            var appName = Str(app?["name"]);
            rows.Add([appName, "", Str(app?["status"]), "", "", OneLine(Str(app?["message"]))]);
            foreach (var d in app?["deployments"]?.AsArray() ?? [])
                rows.Add(["", Str(d?["name"]), Str(d?["status"]), $"{d?["running_replicas"]}/{d?["target_replicas"]}", Str(d?["runtime_env"]), OneLine(Str(d?["message"]))]);
        }
        if (rows.Count == 1)
        {
            await output.WriteLineAsync("No applications are running.").ConfigureAwait(false);
            return;
        }
        var widths = Enumerable.Range(0, 6).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
            await output.WriteLineAsync(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd()).ConfigureAwait(false);
    }

    private static string Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
