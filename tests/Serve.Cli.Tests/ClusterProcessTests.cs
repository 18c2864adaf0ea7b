using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serve.Cli;

namespace Serve.Cli.Tests;

/// <summary>Answers with the id of the process it runs in, so a test can see which node served a request.</summary>
[Deployment]
public sealed partial class Worker
{
    public async Task<string> Call(string text)
    {
        // Long enough that calls are in flight on every node when one is killed.
        await Task.Delay(20);
        return $"{text}@{Environment.ProcessId}";
    }
}

public static class ClusterApps
{
    public static Application<WorkerHandle> Work() => Worker.Bind();
}

/// <summary>One <c>serve run --cluster</c> process; its output is collected, and it is killed on dispose.</summary>
internal sealed partial class ServeNodeProcess : IDisposable
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "Serve.Cli.dll");
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServeNodeProcess(string name, params string[] args)
    {
        Name = name;
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Cli);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        _process = Process.Start(start)!;
        _process.StandardInput.Close();
        _process.OutputDataReceived += (_, e) => Add(e.Data);
        _process.ErrorDataReceived += (_, e) => Add(e.Data is null ? null : "stderr: " + e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.EnableRaisingEvents = true;
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException($"node {Name} exited ({_process.ExitCode}) before serving:{Environment.NewLine}{Output}"));
    }

    public string Name { get; }

    public int ProcessId => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public Uri Url { get; private set; } = null!;

    public Uri Admin { get; private set; } = null!;

    /// <summary>The node id the process printed (its Orleans silo address, <c>ip:port@epoch</c>).</summary>
    public string NodeId { get; private set; } = "";

    /// <summary>Waits (bounded) until the node serves, then reads its URL, admin address and node id from its output.</summary>
    public async Task WaitUntilServingAsync(TimeSpan bound)
    {
        try
        {
            await _ready.Task.WaitAsync(bound);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"node {Name} did not serve within {bound}:{Environment.NewLine}{Output}");
        }
        var output = Output;
        Url = new Uri(ServingAt().Match(output).Groups[1].Value);
        Admin = new Uri(AdminAt().Match(output).Groups[1].Value);
        NodeId = NodeLine().Match(output).Groups[1].Value;
        Assert.True(NodeId.Length > 0, $"node {Name} printed no 'Cluster node ... joined' line:{Environment.NewLine}{output}");
    }

    /// <summary>Whether a status document's replica <c>node</c> value is this node (its id, or its <c>ip:port</c>).</summary>
    public bool Is(string? node) =>
        node is not null && (node == NodeId || node.StartsWith(NodeId.Split('@')[0] + "@", StringComparison.Ordinal) || node == NodeId.Split('@')[0]);

    public void KillHard() => _process.Kill(entireProcessTree: true);

    /// <summary>Waits (bounded) for the process to exit by itself and for its output to be read; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan bound)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(bound);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"node {Name} did not exit within {bound}:{Environment.NewLine}{Output}");
        }
        return _process.ExitCode;
    }

    public void Dispose() => ChildProcesses.Stop(_process);

    private void Add(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
        if (line == "Press Ctrl-C to stop.")
            _ready.TrySetResult();
    }

    [GeneratedRegex(@"Application 'work' is serving at (http://\S+)")]
    private static partial Regex ServingAt();

    [GeneratedRegex(@"Admin API at (http://\S+) ")]
    private static partial Regex AdminAt();

    [GeneratedRegex(@"Cluster node (\S+) joined")]
    private static partial Regex NodeLine();
}

/// <summary>
/// Three <c>serve run --cluster redis://…</c> processes on loopback around one redis-server: HTTP load on two of them,
/// <c>kill -9</c> of the third, which holds replicas. No accepted request may fail, and the cluster must return to its
/// replica count on the survivors.
/// </summary>
public sealed class ClusterProcessTests : IDisposable
{
    private const int ReplicaCount = 3;
    private const int MaxOngoing = 4;
    private static readonly TimeSpan RestoreBound = TimeSpan.FromSeconds(40);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly string Assembly = typeof(CliApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cli-cluster-process-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RedisFact]
    public async Task One_node_joins_through_the_cluster_flag_serves_and_leaves_on_serve_shutdown()
    {
        using var redis = await RedisServer.StartAsync(TimeSpan.FromSeconds(10));
        var config = Path.Combine(_dir, "serve.yaml");
        await File.WriteAllTextAsync(config, $"""
            http: {"{"} host: 127.0.0.1, port: 8000 {"}"}
            cluster: {"{"} store: redis://127.0.0.1:1, node_labels: {"{"} zone: a {"}"} {"}"}
            applications:
              - name: work
                route_prefix: /work
                import: {Assembly}:Serve.Cli.Tests.ClusterApps.Work
            """);
        // The flag overrides the file's store (nothing listens on port 1) and --http-port the file's port.
        using var node = new ServeNodeProcess("a", "run", config, "--cluster", redis.Address, "--http-port", "0", "--admin-port", "0");
        await node.WaitUntilServingAsync(Bound);

        Assert.Matches($@"Cluster node 127\.0\.0\.1:\d+@\d+ joined cluster 'serve' at {Regex.Escape(redis.Address)} \(--cluster\): silo port \d+, no gateway, labels zone=a, placement spread", node.Output);
        Assert.NotEqual(8000, node.Url.Port);
        using var http = new HttpClient { Timeout = Bound };
        using (var answer = await http.PostAsync(node.Url, new StringContent("\"hi\"", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal($"hi@{node.ProcessId}", await answer.Content.ReadAsStringAsync());
        }

        using (var shutdown = await http.PostAsync(new Uri(node.Admin, "api/serve/shutdown"), null))
            Assert.Equal(HttpStatusCode.Accepted, shutdown.StatusCode);
        Assert.Equal(RunCommand.Ok, await node.WaitForExitAsync(Bound));
        Assert.EndsWith("Stopped." + Environment.NewLine, node.Output);
        Assert.DoesNotContain("stderr:", node.Output);
    }

    [RedisFact]
    public async Task A_cluster_node_whose_http_port_is_taken_exits_2_naming_the_address_as_without_a_cluster()
    {
        using var redis = await RedisServer.StartAsync(TimeSpan.FromSeconds(10));
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var output = new LockedWriter();
        var error = new LockedWriter();

        var code = await RunCommand.ExecuteAsync($"{Assembly}:Serve.Cli.Tests.ClusterApps.Work", redis.Address, output, error, CancellationToken.None, o =>
        {
            o.Http.Port = port;
            o.Admin.Port = 0;
        }, started: null).WaitAsync(Bound);

        Assert.Equal(RunCommand.InvalidConfig, code);
        Assert.StartsWith($"error: cannot start the host: The Serve HTTP ingress could not listen on http://127.0.0.1:{port}", error.ToString());
        Assert.DoesNotContain("serving at", output.ToString());
    }

    [RedisFact]
    public async Task Three_nodes_on_loopback_lose_no_request_when_one_is_killed_and_return_to_their_replica_count()
    {
        using var redis = await RedisServer.StartAsync(TimeSpan.FromSeconds(10));
        var config = Path.Combine(_dir, "serve.yaml");
        await File.WriteAllTextAsync(config, $"""
            http: {"{"} host: 127.0.0.1, port: 0 {"}"}
            applications:
              - name: work
                route_prefix: /work
                import: {Assembly}:Serve.Cli.Tests.ClusterApps.Work
                deployments:
                  - name: Worker
                    num_replicas: {ReplicaCount}
                    max_ongoing_requests: {MaxOngoing}
            """);
        var nodes = new List<ServeNodeProcess>();
        try
        {
            foreach (var name in new[] { "a", "b", "c" })
                nodes.Add(new ServeNodeProcess(name, "run", config, "--cluster", redis.Address, "--admin-port", "0"));
            await Task.WhenAll(nodes.Select(n => n.WaitUntilServingAsync(Bound)));
            Assert.Equal(3, nodes.Select(n => n.NodeId).Distinct().Count());

            using var http = new HttpClient { Timeout = Bound };
            // The cluster controller places the replicas as the nodes report (it never moves a running one), so which
            // node holds them depends on the order they joined: wait for the cluster's count, then kill a node that
            // holds replicas (the one holding most) and send the load to the other two.
            JsonNode? placed = null;
            if (!await TryWaitAsync(async () => RunningReplicas(placed = await StatusAsync(http, nodes[0].Admin)).Count() == ReplicaCount, Bound))
                Assert.Fail($"the cluster did not place {ReplicaCount} RUNNING replicas of Worker within {Bound}; node {nodes[0].Name}'s status: {placed}");
            var c = nodes.OrderByDescending(n => RunningReplicas(placed).Count(n.Is)).ThenByDescending(n => n.Name, StringComparer.Ordinal).First();
            var (a, b) = (nodes.Where(n => n != c).First(), nodes.Where(n => n != c).Last());
            // Load that a and b cannot serve alone, so calls cross to c's replicas, yet that the survivors' replicas can
            // serve once c is gone: one call more than a's own replicas take, and one call on b.
            var onA = RunningReplicas(placed).Count(a.Is) * MaxOngoing + 1;
            var onB = 1;
            Assert.True(RunningReplicas(placed).Any(c.Is), $"node {c.Name} runs no replica of Worker to kill; the cluster's status: {placed}");
            var answers = new ConcurrentQueue<(string Node, bool AfterKill, HttpStatusCode Status, string Body)>();
            var servedBy = new ConcurrentDictionary<string, int>();
            var killed = false;
            using var stopLoad = new CancellationTokenSource();
            var load = Enumerable.Range(0, onA + onB).Select(i => Task.Run(async () =>
            {
                var target = i < onA ? a : b;
                while (!stopLoad.IsCancellationRequested)
                {
                    var afterKill = Volatile.Read(ref killed);
                    string body;
                    HttpStatusCode status;
                    try
                    {
                        using var response = await http.PostAsync(target.Url, new StringContent($"\"r{i}\"", Encoding.UTF8, "application/json"));
                        status = response.StatusCode;
                        body = await response.Content.ReadAsStringAsync();
                    }
                    catch (HttpRequestException e)
                    {
                        (status, body) = (0, $"{e.GetType().Name}: {e.Message}");
                    }
                    answers.Enqueue((target.Name, afterKill, status, body));
                    if (status == HttpStatusCode.OK && body.Split('@') is [_, var pid])
                        servedBy.AddOrUpdate(pid, 1, (_, n) => n + 1);
                }
            })).ToArray();
            try
            {
                // The node to kill serves part of this load (calls cross to it) before it is killed.
                var cPid = c.ProcessId.ToString();
                await WaitAsync(() => servedBy.ContainsKey(cPid), Bound,
                    () => $"no request sent to node {a.Name} ({onA} at a time) or {b.Name} ({onB}) was served by node {c.Name} (process {cPid}) within {Bound}; served by process: {string.Join(", ", servedBy)}");

                c.KillHard();
                Volatile.Write(ref killed, true);
                var killedAt = answers.Count;

                // Keep the load on while the survivors notice the loss and the cluster replaces c's replicas.
                JsonNode? status = null;
                var restored = await TryWaitAsync(async () =>
                {
                    status = await StatusAsync(http, a.Admin);
                    // Counted on a's status, which must show the whole cluster: a's replicas ("local" or a's id) and b's.
                    var running = RunningReplicas(status).ToList();
                    return running.Count(n => a.Is(n) || b.Is(n)) == ReplicaCount && !running.Any(c.Is);
                }, RestoreBound);
                await WaitAsync(() => answers.Count >= killedAt + 50, Bound, () => $"the load stalled after node {c.Name} was killed: {answers.Count - killedAt} answers since");
                await stopLoad.CancelAsync();
                await Task.WhenAll(load).WaitAsync(Bound);

                var failed = answers.Where(x => x.Status != HttpStatusCode.OK).ToList();
                Assert.True(failed.Count == 0,
                    $"{failed.Count} of {answers.Count} requests failed ({failed.Count(f => f.AfterKill)} of them after node {c.Name} was killed); first: " +
                    string.Join("; ", failed.Take(5).Select(f => $"node {f.Node}{(f.AfterKill ? " after the kill" : "")}: {(int)f.Status} {f.Body.Trim()}")) +
                    (failed.Count > 0 ? $"{Environment.NewLine}What node {failed[0].Node} logged about the first:{Environment.NewLine}{Logged(nodes.Single(n => n.Name == failed[0].Node), failed[0].Body)}" : ""));
                Assert.True(restored,
                    $"the cluster did not return to {ReplicaCount} RUNNING replicas of Worker on the survivors (nodes {a.Name} = {a.NodeId}, {b.Name} = {b.NodeId}) " +
                    $"within {RestoreBound} after node {c.Name} ({c.NodeId}) was killed ({answers.Count} requests, all answered 200). Node {a.Name}'s status (GET {a.Admin}api/serve/applications, " +
                    $"what `serve status --json` prints) lists these replicas (node, state): {string.Join(", ", Replicas(status).Select(r => $"({r.Node}, {r.State})"))}. " +
                    "This needs the cluster controller (a cluster-wide replica count, a dead node's replicas replaced on the survivors) " +
                    "and a status that lists every node's replicas with the node each runs on.");
            }
            finally
            {
                await stopLoad.CancelAsync();
                await Task.WhenAll(load).WaitAsync(Bound);
            }
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{e.Message}{Environment.NewLine}{string.Join(Environment.NewLine, nodes.Select(n => $"--- node {n.Name} ---{Environment.NewLine}{Tail(n.Output)}"))}", e);
        }
        finally
        {
            foreach (var node in nodes)
                node.Dispose();
        }
    }

    private static async Task<JsonNode?> StatusAsync(HttpClient http, Uri admin)
    {
        try
        {
            return JsonNode.Parse(await http.GetStringAsync(new Uri(admin, "api/serve/applications")));
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static IEnumerable<(string? Node, string? State)> Replicas(JsonNode? status) =>
        status?["applications"]?.AsArray()
            .Where(app => (string?)app!["name"] == "work")
            .SelectMany(app => app!["deployments"]!.AsArray())
            .Where(d => (string?)d!["name"] == "Worker")
            .SelectMany(d => d!["replicas"]!.AsArray())
            .Select(r => ((string?)r!["node"], (string?)r["state"])) ?? [];

    private static IEnumerable<string?> RunningReplicas(JsonNode? status) =>
        Replicas(status).Where(r => r.State == "RUNNING").Select(r => r.Node);

    private static async Task WaitAsync(Func<bool> condition, TimeSpan bound, Func<string> failure)
    {
        if (!await TryWaitAsync(() => Task.FromResult(condition()), bound))
            Assert.Fail(failure());
    }

    private static async Task<bool> TryWaitAsync(Func<Task<bool>> condition, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                return false;
            await Task.Delay(100);
        }
        return true;
    }

    /// <summary>The lines a node logged around the request id in an error body ("...; request id X").</summary>
    private static string Logged(ServeNodeProcess node, string body)
    {
        var id = Regex.Match(body, "request id ([0-9a-f]+)").Groups[1].Value;
        var lines = node.Output.Split('\n');
        var at = id.Length == 0 ? -1 : Array.FindIndex(lines, l => l.Contains(id, StringComparison.Ordinal));
        return at < 0 ? Tail(node.Output) : string.Join('\n', lines.Skip(Math.Max(0, at - 2)).Take(30));
    }

    private static string Tail(string output) => output.Length <= 4000 ? output : "..." + output[^4000..];
}
