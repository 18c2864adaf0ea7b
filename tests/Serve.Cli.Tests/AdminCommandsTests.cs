using Serve.Cli;

namespace Serve.Cli.Tests;

public sealed class AdminCommandsTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string Assembly = typeof(CliApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cli-admin-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Task<ServeHost> StartAsync(string? token = null) => ServeHost.StartAsync(o =>
    {
        o.Http.Enabled = false;
        o.Admin.Enabled = true;
        o.Admin.Port = 0;
        o.Admin.AccessToken = token;
    }).WaitAsync(Bound);

    private static string Address(ServeHost serve) => serve.AdminAddress!.ToString();

    private string EchoConfig(params string[] names) => Write("serve.yaml", "applications:\n" + string.Concat(names.Select(n =>
        $"  - name: {n}\n    route_prefix: /{n}\n    import: {Assembly}:Serve.Cli.Tests.CliApps.Echo\n    args:\n      prefix: \"{n}: \"\n")));

    [Fact]
    public async Task Deploy_applies_a_config_and_status_prints_a_table()
    {
        await using var serve = await StartAsync();
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await AdminCommands.DeployAsync(EchoConfig("one", "two"), Address(serve), null, output, error).WaitAsync(Bound);

        Assert.Equal(AdminCommands.Ok, code);
        Assert.Equal("", error.ToString());
        Assert.Equal(["one", "two"], serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal("two: x", await serve.GetHandle<EchoHandle>("Echo", "two").CallAsync("x").AsTask().WaitAsync(Bound));

        // Declarative: a second deploy without "one" removes it.
        code = await AdminCommands.DeployAsync(EchoConfig("two"), Address(serve), null, new StringWriter(), error).WaitAsync(Bound);
        Assert.Equal(AdminCommands.Ok, code);
        Assert.Equal(["two"], serve.GetStatus().Applications.Select(a => a.Name));

        var table = new StringWriter();
        code = await AdminCommands.StatusAsync(Address(serve), null, table, error).WaitAsync(Bound);
        Assert.Equal(AdminCommands.Ok, code);
        var lines = table.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\+-+\+", lines[0]);
        Assert.Matches(@"^\| Application \| Deployment \| Status +\| Replicas \| Replica states \| Env +\| Reason \|$", lines[1]);
        Assert.Matches(@"^\| two +\| +\| HEALTHY \| +\| +\| +\| +\|$", lines[3]);
        Assert.Matches(@"^\| +\| Echo +\| HEALTHY \| 1/1 +\| 1 RUNNING +\| Shared \| +\|$", lines[4]);
    }

    [Fact]
    public async Task Status_of_a_cluster_names_the_nodes_and_says_where_each_replica_runs()
    {
        // What a cluster node's admin API answers (Serve.Orleans): replicas carry their node, and "nodes" lists the cluster.
        var status = System.Text.Json.Nodes.JsonNode.Parse("""
            {
              "applications": [ { "name": "work", "status": "RUNNING", "deployments": [ {
                "name": "Worker", "status": "HEALTHY", "message": "", "running_replicas": 3, "target_replicas": 3, "runtime_env": "Shared",
                "replicas": [
                  { "replica_id": "r1", "state": "RUNNING", "node": "127.0.0.1:11112@2" },
                  { "replica_id": "r2", "state": "RUNNING", "node": "127.0.0.1:11111@1" },
                  { "replica_id": "r3", "state": "RUNNING", "node": "127.0.0.1:11112@2" } ] } ] } ],
              "nodes": [
                { "node_id": "127.0.0.1:11112@2", "state": "active", "cpus": 4, "gpus": [], "labels": { "zone": "b" }, "message": "", "is_controller": false, "is_self": false },
                { "node_id": "127.0.0.1:11111@1", "state": "active", "cpus": 2, "gpus": ["gpu0 logical GPU 0"], "labels": { "zone": "a" }, "message": "", "is_controller": true, "is_self": true } ]
            }
            """);
        var table = new StringWriter();

        await AdminCommands.WriteTableAsync(status, table).WaitAsync(Bound);

        var lines = table.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\| +\| Worker +\| HEALTHY \| 3/3 +\| 1 RUNNING @n1, 2 RUNNING @n2 \|"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\| Node \| Address +\| State +\| CPUs \| GPUs \| Labels +\| Replicas \| Notes +\|$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\| n1 +\| 127\.0\.0\.1:11111@1 \| active \| 2 +\| 1 +\| zone=a +\| 1 +\| controller; this node \|$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\| n2 +\| 127\.0\.0\.1:11112@2 \| active \| 4 +\| 0 +\| zone=b +\| 2 +\| +\|$"));
    }

    [Fact]
    public async Task Deploy_of_an_invalid_config_exits_2_with_the_file_and_key_path_and_changes_nothing()
    {
        await using var serve = await StartAsync();
        var path = Write("bad.yaml", $"""
            applications:
              - import: {Assembly}:Serve.Cli.Tests.CliApps.Echo
                deployments:
                  - name: Echo
                    num_replicas: -1
            """);
        var error = new StringWriter();

        var code = await AdminCommands.DeployAsync(path, Address(serve), null, new StringWriter(), error).WaitAsync(Bound);

        Assert.Equal(AdminCommands.InvalidConfig, code);
        Assert.Contains("bad.yaml: applications[0].deployments[0].num_replicas: expected an integer of 0 or more, got -1", error.ToString());
        Assert.Empty(serve.GetStatus().Applications);
    }

    [Fact]
    public async Task Commands_report_an_unreachable_host_and_exit_1()
    {
        int port;
        await using (var gone = await StartAsync())
            port = gone.AdminAddress!.Port;
        var address = $"http://127.0.0.1:{port}";
        var error = new StringWriter();

        Assert.Equal(AdminCommands.Failed, await AdminCommands.StatusAsync(address, null, new StringWriter(), error).WaitAsync(Bound));
        Assert.Equal(AdminCommands.Failed, await AdminCommands.ShutdownAsync(address, null, new StringWriter(), error).WaitAsync(Bound));
        Assert.Contains($"no Serve host answers at {address}; start one with `serve run`", error.ToString());
    }

    [Fact]
    public async Task Status_needs_the_token_when_the_host_has_one()
    {
        await using var serve = await StartAsync(token: "t0ken");
        var error = new StringWriter();

        Assert.Equal(AdminCommands.Failed, await AdminCommands.StatusAsync(Address(serve), null, new StringWriter(), error).WaitAsync(Bound));
        Assert.Contains("401", error.ToString());
        Assert.Contains("--token", error.ToString());
        var output = new StringWriter();
        Assert.Equal(AdminCommands.Ok, await AdminCommands.StatusAsync(Address(serve), "t0ken", output, error).WaitAsync(Bound));
        Assert.Contains("No applications are running.", output.ToString());
    }

    [Fact]
    public async Task Shutdown_makes_serve_run_exit_0()
    {
        var path = EchoConfig("echo");
        var output = new StringWriter();
        var error = new StringWriter();
        var started = new TaskCompletionSource<ServeHost>(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = RunCommand.ExecuteAsync(path, output, error, CancellationToken.None, o =>
        {
            o.Http.Port = 0;
            o.Admin.Port = 0;
        }, serve => started.TrySetResult(serve));
        await Task.WhenAny(run, started.Task).WaitAsync(Bound);
        var serve = await started.Task.WaitAsync(Bound);
        Assert.Contains($"Admin API at {serve.AdminAddress}", output.ToString());

        var shutdownOutput = new StringWriter();
        Assert.Equal(AdminCommands.Ok, await AdminCommands.ShutdownAsync(Address(serve), null, shutdownOutput, error).WaitAsync(Bound));
        Assert.Contains("Shutdown requested", shutdownOutput.ToString());

        Assert.Equal(RunCommand.Ok, await run.WaitAsync(Bound));
        Assert.Equal("", error.ToString());
        Assert.EndsWith("Stopped." + Environment.NewLine, output.ToString());
    }
}
