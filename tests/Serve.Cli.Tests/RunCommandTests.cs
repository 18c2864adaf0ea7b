using Serve.Cli;

namespace Serve.Cli.Tests;

[Deployment]
public partial class Echo(string prefix)
{
    public string Call(string text) => prefix + text;
}

/// <summary>Builders the tests import by path.</summary>
public static class CliApps
{
    public static Application<EchoHandle> Echo(string prefix = "echo: ") => Tests.Echo.Bind(prefix);
}

public sealed class RunCommandTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string Assembly = typeof(CliApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static async Task<(int Code, string Output, string Error)> RunUntilStartedAsync(string target, Func<ServeHost, Task> whileServing)
    {
        using var stop = new CancellationTokenSource();
        var output = new StringWriter();
        var error = new StringWriter();
        var started = new TaskCompletionSource<ServeHost>(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = RunCommand.ExecuteAsync(target, output, error, stop.Token, o =>
        {
            o.Http.Port = 0;
            o.Admin.Port = 0;
        }, serve => started.TrySetResult(serve));
        var first = await Task.WhenAny(run, started.Task).WaitAsync(Bound);
        if (first == started.Task)
        {
            try
            {
                await whileServing(await started.Task);
            }
            finally
            {
                await stop.CancelAsync();
            }
        }
        var code = await run.WaitAsync(Bound);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Run_serves_a_yaml_config_over_http_until_stopped()
    {
        var path = Write("serve.yaml", $"""
            http:
              host: 127.0.0.1
            applications:
              - name: echo
                route_prefix: /echo
                import: {Assembly}:Serve.Cli.Tests.CliApps.Echo
                args:
                  prefix: "yaml: "
            """);
        var (code, output, error) = await RunUntilStartedAsync(path, async serve =>
        {
            using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
            var answer = await http.PostAsync("/echo", new StringContent("\"hi\"", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal("yaml: hi", await answer.Content.ReadAsStringAsync());
        });

        Assert.Equal(RunCommand.Ok, code);
        Assert.Equal("", error);
        Assert.Matches(@"Application 'echo' is serving at http://127\.0\.0\.1:\d+/echo", output);
        Assert.EndsWith("Stopped." + Environment.NewLine, output);
    }

    [Fact]
    public async Task Run_serves_an_assembly_builder_target()
    {
        var (code, output, _) = await RunUntilStartedAsync($"{Assembly}:Serve.Cli.Tests.CliApps.Echo", async serve =>
            Assert.Equal("echo: x", await serve.GetHandle<EchoHandle>("Echo").CallAsync("x")));

        Assert.Equal(RunCommand.Ok, code);
        Assert.Contains("Application 'default' is serving at http://", output);
    }

    [Fact]
    public async Task Run_rejects_an_invalid_config_with_exit_code_2_and_the_key_path()
    {
        var path = Write("bad.yaml", $"""
            applications:
              - import: {Assembly}:Serve.Cli.Tests.CliApps.Echo
                deployments:
                  - name: Echo
                    num_replicas: -1
            """);
        var (code, output, error) = await RunUntilStartedAsync(path, _ => throw new InvalidOperationException("must not start"));

        Assert.Equal(RunCommand.InvalidConfig, code);
        Assert.Equal("", output);
        Assert.Contains("bad.yaml: applications[0].deployments[0].num_replicas: expected an integer of 0 or more, got -1", error);
    }
}
