using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serve.Cli;

namespace Serve.Cli.Tests;

[Deployment]
public partial class Unloadable
{
    public Unloadable() => throw new FileNotFoundException("model file ranker.onnx is missing");

    public int Call() => 1;
}

/// <summary>Holds its replica's start until the test opens the gate, so "waiting for a replica" is certain to show.</summary>
[Deployment]
public partial class SlowStart
{
    public static readonly ManualResetEventSlim Gate = new();

    public SlowStart()
    {
        if (!Gate.Wait(TimeSpan.FromSeconds(30)))
            throw new TimeoutException("the test never opened the gate");
    }

    public string Call() => "ready";
}

public static class SlowApps
{
    public static Application<SlowStartHandle> Slow() => SlowStart.Bind();
}

/// <summary>A StringWriter that a command may write while the test reads it.</summary>
internal sealed class LockedWriter : StringWriter
{
    private readonly Lock _lock = new();

    public override void Write(char value)
    {
        lock (_lock)
            base.Write(value);
    }

    public override void Write(string? value)
    {
        lock (_lock)
            base.Write(value);
    }

    public override void Write(char[] buffer, int index, int count)
    {
        lock (_lock)
            base.Write(buffer, index, count);
    }

    public override string ToString()
    {
        lock (_lock)
            return base.ToString();
    }
}

/// <summary><c>serve status</c> and <c>serve run</c> run as processes (<c>dotnet Serve.Cli.dll ...</c>), output read back.</summary>
public sealed class CliProcessTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "Serve.Cli.dll");
    private static readonly string Assembly = typeof(CliApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cli-process-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Process Start(params string[] args)
    {
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
        // A terminal type that asks for colour: the output is still a pipe, so it must come without escape codes.
        start.Environment["TERM"] = "xterm-256color";
        start.Environment.Remove("NO_COLOR");
        var process = Process.Start(start)!;
        process.StandardInput.Close();
        return process;
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var process = Start(args);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Bound);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Status_prints_a_plain_table_with_states_and_reasons_and_json_with_the_json_flag()
    {
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Port = 0;
        }).WaitAsync(Bound);
        await serve.RunAsync(Echo.Bind("hi: ").WithOptions(o => o.NumReplicas = 2), new RunOptions { Name = "echo", RoutePrefix = "/echo" }).WaitAsync(Bound);
        await Assert.ThrowsAsync<DeploymentFailedException>(() =>
            serve.RunAsync(Unloadable.Bind(), new RunOptions { Name = "rank", RoutePrefix = "/rank" }).WaitAsync(Bound));
        var address = serve.AdminAddress!.ToString();

        var (code, output, error) = await RunAsync("status", "--address", address);

        Assert.Equal(AdminCommands.Ok, code);
        Assert.Equal("", error);
        Assert.DoesNotContain('\u001b', output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^\| Application \| Deployment +\| Status +\| Replicas \| Replica states \| Env +\| Reason +\|$"));
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^\| echo +\| +\| HEALTHY +\|"));
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^\| +\| Echo +\| HEALTHY +\| 2/2 +\| 2 RUNNING +\| Shared \| +\|$"));
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^\| rank +\| +\| UNHEALTHY \|"));
        Assert.Contains(lines, l => Regex.IsMatch(l,
            @"^\| +\| Unloadable +\| UNHEALTHY \| 0/1 +\| +\| Shared \| Deployment 'Unloadable' of application 'rank' failed to start: its replica threw FileNotFoundException 3 time\(s\) in a row, last: model file ranker\.onnx is missing \|$"));

        var (jsonCode, json, jsonError) = await RunAsync("status", "--address", address, "--json");

        Assert.Equal(AdminCommands.Ok, jsonCode);
        Assert.Equal("", jsonError);
        var document = JsonNode.Parse(json)!;
        Assert.Equal(["echo", "rank"], document["applications"]!.AsArray().Select(a => (string)a!["name"]!));
        Assert.Equal(2, (int)document["applications"]![0]!["deployments"]![0]!["running_replicas"]!);
        Assert.NotNull(document["recent_errors"]);
    }

    [Fact]
    public async Task Status_with_the_wrong_token_exits_1_and_says_to_pass_it()
    {
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Port = 0;
            o.Admin.AccessToken = "right";
        }).WaitAsync(Bound);

        var (code, output, error) = await RunAsync("status", "--address", serve.AdminAddress!.ToString(), "--json", "--token", "wrong");

        Assert.Equal(AdminCommands.Failed, code);
        Assert.Equal("", output);
        Assert.Contains("error: the host answered 401 Unauthorized", error);
        Assert.Contains("--token", error);
    }

    [Fact]
    public async Task Run_shows_progress_then_urls_with_curl_lines_that_work_and_stops_on_serve_shutdown()
    {
        var config = Path.Combine(_dir, "serve.yaml");
        await File.WriteAllTextAsync(config, $"""
            http:
              host: 127.0.0.1
              port: 0
            applications:
              - name: echo
                route_prefix: /echo
                import: {Assembly}:Serve.Cli.Tests.CliApps.Echo
                args:
                  prefix: "echo: "
            """);
        using var process = Start("run", config, "--admin-port", "0");
        var output = new StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (output)
                    output.AppendLine(line);
                if (line == "Press Ctrl-C to stop.")
                    ready.TrySetResult();
            }
        });
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            await Task.WhenAny(ready.Task, process.WaitForExitAsync()).WaitAsync(Bound);
            string started;
            lock (output)
                started = output.ToString();
            if (!ready.Task.IsCompleted)
                Assert.Fail($"serve run exited before serving:{Environment.NewLine}{started}{await errors}");

            Assert.Contains("Deploying application 'echo' (", started);
            Assert.Contains("  Echo: ready, 1/1 replica(s) running", started);
            var url = Regex.Match(started, @"Application 'echo' is serving at (http://127\.0\.0\.1:\d+/echo)").Groups[1].Value;
            Assert.NotEqual("", url);
            Assert.Contains($"    curl -X POST {url} -H 'content-type: application/json' -d '\"hello\"'", started);
            var admin = Regex.Match(started, @"Dashboard at (http://127\.0\.0\.1:\d+/)").Groups[1].Value;
            Assert.NotEqual("", admin);

            // The curl line's request, sent as curl would.
            using var http = new HttpClient { Timeout = Bound };
            using var answer = await http.PostAsync(url, new StringContent("\"hello\"", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal("echo: hello", await answer.Content.ReadAsStringAsync());

            var (shutdownCode, shutdownOutput, _) = await RunAsync("shutdown", "--address", admin);
            Assert.Equal(AdminCommands.Ok, shutdownCode);
            Assert.Contains("Shutdown requested", shutdownOutput);
            await process.WaitForExitAsync().WaitAsync(Bound);
            await reading.WaitAsync(Bound);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }

        Assert.Equal(RunCommand.Ok, process.ExitCode);
        Assert.Equal("", await errors);
        Assert.DoesNotContain('\u001b', output.ToString());
        Assert.EndsWith("Stopped." + Environment.NewLine, output.ToString());
    }

    [Fact]
    public async Task Run_says_which_deployment_waits_on_its_replica_while_it_starts()
    {
        SlowStart.Gate.Reset();
        using var stop = new CancellationTokenSource();
        var output = new LockedWriter();
        var error = new StringWriter();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = RunCommand.ExecuteAsync($"{Assembly}:Serve.Cli.Tests.SlowApps.Slow", output, error, stop.Token, o =>
        {
            o.Http.Port = 0;
            o.Admin.Port = 0;
        }, _ => started.TrySetResult());
        try
        {
            var deadline = DateTime.UtcNow + Bound;
            while (!output.ToString().Contains("  SlowStart: waiting for 1 replica(s) to start, 0/1 replica(s) running", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline && !run.IsCompleted, $"no waiting line:{Environment.NewLine}{output}{error}");
                await Task.Delay(20);
            }
            Assert.DoesNotContain("is serving at", output.ToString());
        }
        finally
        {
            SlowStart.Gate.Set();
        }
        await started.Task.WaitAsync(Bound);
        await stop.CancelAsync();
        Assert.Equal(RunCommand.Ok, await run.WaitAsync(Bound));

        var text = output.ToString();
        Assert.True(text.IndexOf("waiting for 1 replica(s) to start", StringComparison.Ordinal) < text.IndexOf("  SlowStart: ready, 1/1 replica(s) running", StringComparison.Ordinal));
        Assert.Matches(@"Application 'default' is serving at (http://127\.0\.0\.1:\d+/)\n    curl http://127\.0\.0\.1:\d+/\n", text.ReplaceLineEndings("\n"));
    }
}
