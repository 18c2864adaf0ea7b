using Serve.Cli;

namespace Serve.Cli.Tests;

/// <summary>`serve run` and `serve deploy` print why a hostile config is refused and exit 2; nothing crashes.</summary>
public sealed class HostileConfigTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string Assembly = typeof(CliApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cli-hostile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private const string Laughs = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """;

    public static TheoryData<string, string, string> Hostile() => new()
    {
        { "deep.yaml", new string('[', 100_000), "nested more than 64 levels deep" },
        { "deep.json", new string('[', 100_000), "deep.json: $: nested more than 64 levels deep" },
        { "laughs.yaml", Laughs, "more than 100,000 values once alias *" },
        { "dup.yaml", "applications: []\napplications: []\n", "dup.yaml: applications: key 'applications' appears twice in the same mapping (again at line 2); keep one" },
        { "dup.json", """{ "applications": [], "applications": [] }""", "dup.json: applications: key 'applications' appears twice in the same mapping; keep one" },
        { "host.yaml", $"http:\n  host: not-an-ip\napplications:\n  - import: {Assembly}:Serve.Cli.Tests.CliApps.Echo\n", "host.yaml: http.host: expected an IP address" },
        { "prefix.yaml", $"applications:\n  - name: e\n    route_prefix: /a?b\n    import: {Assembly}:Serve.Cli.Tests.CliApps.Echo\n",
          "prefix.yaml: applications[0].route_prefix: application \"e\": \"/a?b\" is not a route prefix: it holds '?'" },
        { "cpus.yaml", $"applications:\n  - import: {Assembly}:Serve.Cli.Tests.CliApps.Echo\n    deployments:\n      - name: Echo\n        num_cpus: 1e308\n",
          "cpus.yaml: applications[0].deployments[0].num_cpus: expected a number of 0 or more, at most 10000, got 1E+308" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task Run_prints_why_and_exits_2(string name, string text, string expected)
    {
        var path = Write(name, text);
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await RunCommand.ExecuteAsync(path, output, error, CancellationToken.None, o =>
        {
            o.Http.Port = 0;
            o.Admin.Port = 0;
        }).WaitAsync(Bound);

        Assert.Equal(RunCommand.InvalidConfig, code);
        Assert.Equal("", output.ToString());
        Assert.StartsWith("error: invalid config" + Environment.NewLine, error.ToString());
        Assert.Contains(expected, error.ToString());
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task Deploy_prints_why_exits_2_and_the_host_keeps_serving(string name, string text, string expected)
    {
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Port = 0;
        }).WaitAsync(Bound);
        await serve.RunAsync(Echo.Bind("kept: "), new RunOptions { Name = "kept", RoutePrefix = "/kept" }).WaitAsync(Bound);
        var error = new StringWriter();

        var code = await AdminCommands.DeployAsync(Write(name, text), serve.AdminAddress!.ToString(), null, new StringWriter(), error).WaitAsync(Bound);

        Assert.Equal(AdminCommands.InvalidConfig, code);
        Assert.StartsWith("error: invalid config; nothing was changed" + Environment.NewLine, error.ToString());
        Assert.Contains(expected, error.ToString());
        Assert.Equal(AdminCommands.Ok, await AdminCommands.StatusAsync(serve.AdminAddress!.ToString(), null, new StringWriter(), new StringWriter()).WaitAsync(Bound));
        Assert.Equal("kept: x", await serve.GetHandle<EchoHandle>("Echo", "kept").CallAsync("x").AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task Deploy_refuses_a_file_over_4_MiB_without_sending_it()
    {
        var path = Write("big.yaml", "# " + new string('x', Config.ServeConfigLoader.MaxDocumentBytes));
        var error = new StringWriter();

        // No host listens at this address: the size is checked before anything is sent.
        var code = await AdminCommands.DeployAsync(path, "http://127.0.0.1:9", null, new StringWriter(), error).WaitAsync(Bound);

        Assert.Equal(AdminCommands.InvalidConfig, code);
        Assert.Contains("big.yaml: $: the file is 4,194,306 bytes; a config may be at most 4,194,304 bytes (4 MiB)", error.ToString());
    }
}
