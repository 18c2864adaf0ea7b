using Serve.Config;

namespace Serve.Tests;

/// <summary>Builders imported by config files in <see cref="ConfigTests"/>.</summary>
public static class TestApps
{
    public static Application<GreeterHandle> Hello(string message) => Greeter.Bind(message);

    public static Application<GreeterHandle> HelloDefault(string message = "default greeting") => Greeter.Bind(message);

    public static Application<DriverHandle> Graph() => Driver.Bind(ModelA.Bind(), ModelB.Bind());

    public static Application<ConfigurableHandle> Configured() => Configurable.Bind(new Probe());
}

public sealed class ConfigTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string TestAssembly = typeof(TestApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static string Import(string method) => $"{TestAssembly}:Serve.Tests.TestApps.{method}";

    private static Task<ServeHost> StartAsync() => ServeHost.StartAsync(o => o.Http.Enabled = false);

    private ServeConfigException LoadFails(string yaml)
    {
        var path = Write("serve.yaml", yaml);
        return Assert.Throws<ServeConfigException>(() => ServeConfigLoader.Load(path));
    }

    [Fact]
    public async Task Yaml_config_deploys_an_application_with_args_bound_by_name()
    {
        var path = Write("serve.yaml", $"""
            http:
              host: 127.0.0.1
              port: 0
            applications:
              - name: hello
                route_prefix: /hello
                import: {Import("Hello")}
                args:
                  message: "Hi from YAML"
            """);
        var config = ServeConfigLoader.Load(path);
        Assert.Equal(0, config.Http.Port);
        Assert.Equal("127.0.0.1", config.Http.Host);

        await using var serve = await StartAsync();
        await serve.ApplyConfigAsync(config).WaitAsync(Bound);

        Assert.Equal("Hi from YAML", await serve.GetHandle<GreeterHandle>("Greeter", "hello").CallAsync());
        Assert.Equal("/hello", Assert.Single(serve.GetStatus().Applications).RoutePrefix);
    }

    [Fact]
    public async Task Json_config_is_accepted_and_args_may_be_a_list_or_defaulted()
    {
        var path = Write("serve.json", $$"""
            {
              "applications": [
                { "name": "a", "route_prefix": "/a", "import": "{{Import("Hello")}}", "args": ["positional"] },
                { "name": "b", "route_prefix": "/b", "import": "{{Import("HelloDefault")}}" }
              ]
            }
            """);
        await using var serve = await StartAsync();
        await serve.ApplyConfigAsync(ServeConfigLoader.Load(path)).WaitAsync(Bound);

        Assert.Equal("positional", await serve.GetHandle<GreeterHandle>("Greeter", "a").CallAsync());
        Assert.Equal("default greeting", await serve.GetHandle<GreeterHandle>("Greeter", "b").CallAsync());
    }

    [Fact]
    public async Task Deployment_overrides_replace_attribute_defaults_by_name()
    {
        var path = Write("serve.yaml", $"""
            applications:
              - name: graph
                import: {Import("Graph")}
                deployments:
                  - name: ModelA
                    num_replicas: 3
                    max_ongoing_requests: 7
                    num_gpus: 0.5
              - name: configured
                route_prefix: /configured
                import: {Import("Configured")}
                deployments:
                  - name: Configurable
                    num_replicas: 1
                    user_config:
                      greeting: Howdy
            """);
        var config = ServeConfigLoader.Load(path);
        // Three replicas at num_gpus 0.5 need GPUs: two logical ones of 16 GiB (docs/resources.md).
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.Resources.UseLogicalGpus(2, 16L << 30); });
        await serve.ApplyConfigAsync(config).WaitAsync(Bound);

        var modelA = serve.GetDeployment("ModelA", "graph");
        Assert.Equal(3, modelA.Options.NumReplicas);
        Assert.Equal(7, modelA.Options.MaxOngoingRequests);
        Assert.Equal(0.5, modelA.Options.NumGpus);
        Assert.Equal(DeploymentOptions.DefaultNumReplicas, serve.GetDeployment("ModelB", "graph").Options.NumReplicas);
        Assert.Equal(1, serve.GetDeployment("Configurable", "configured").Options.NumReplicas);
        Assert.Equal("Howdy, Ann", await serve.GetHandle<ConfigurableHandle>("Configurable", "configured").CallAsync("Ann"));
        // The bound graph the config built is a new one: the builder's own graph keeps its defaults.
        Assert.Equal(DeploymentOptions.DefaultNumReplicas, TestApps.Graph().Arguments.OfType<Application>().First().GetOptions().NumReplicas);
    }

    [Fact]
    public void Wrong_type_names_the_key_path_and_the_value()
    {
        var e = LoadFails($"""
            applications:
              - import: {Import("Graph")}
                deployments:
                  - name: ModelA
                  - name: ModelB
                    num_replicas: two
            """);
        Assert.EndsWith("serve.yaml: applications[0].deployments[1].num_replicas: expected an integer of 0 or more, got \"two\"", e.Message);
    }

    [Fact]
    public void Unknown_keys_are_named_with_the_allowed_ones_and_all_errors_are_reported_together()
    {
        var e = LoadFails($"""
            htp:
              port: 8000
            http:
              port: 70000
            applications:
              - import: {Import("Hello")}
                args: {"{"} message: hi {"}"}
                routeprefix: /x
            """);
        Assert.Equal(3, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.Path == "htp" && x.Reason.Contains("allowed keys here are http, applications"));
        Assert.Contains(e.Errors, x => x.Path == "http.port" && x.Reason == "expected an integer from 0 to 65535, got 70000");
        Assert.Contains(e.Errors, x => x.Path == "applications[0].routeprefix" && x.Reason.Contains("route_prefix"));
        Assert.Contains("serve.yaml: htp: unknown key", e.Message);
    }

    [Fact]
    public void Missing_assembly_type_and_method_say_what_was_searched()
    {
        var missing = LoadFails("applications:\n  - import: ./nope/Missing.dll:A.B.C\n");
        Assert.Equal("applications[0].import", Assert.Single(missing.Errors).Path);
        Assert.Contains("assembly not found", missing.Message);
        Assert.Contains(Path.Combine("nope", "Missing.dll"), missing.Message);

        var type = LoadFails($"applications:\n  - import: {TestAssembly}:Serve.Tests.NoSuchType.Hello\n");
        Assert.Contains("applications[0].import: type 'Serve.Tests.NoSuchType' not found", type.Message);

        var method = LoadFails($"applications:\n  - import: {Import("Nope")}\n");
        Assert.Contains("applications[0].import: no public static method 'Nope'", method.Message);
        Assert.Contains("Hello", method.Message);
    }

    [Fact]
    public void Args_are_checked_against_the_builder_parameters()
    {
        var missing = LoadFails($"applications:\n  - import: {Import("Hello")}\n");
        Assert.Equal("applications[0].args.message", Assert.Single(missing.Errors).Path);

        var unknown = LoadFails($"applications:\n  - import: {Import("Hello")}\n    args:\n      message: hi\n      volume: 11\n");
        var error = Assert.Single(unknown.Errors);
        Assert.Equal("applications[0].args.volume", error.Path);
        Assert.Contains("message", error.Reason);

        var wrongType = LoadFails($"applications:\n  - import: {Import("Hello")}\n    args:\n      message: [1, 2]\n");
        Assert.Equal("applications[0].args.message", Assert.Single(wrongType.Errors).Path);
    }

    [Fact]
    public void Unknown_deployment_name_lists_the_graphs_deployments()
    {
        var e = LoadFails($"""
            applications:
              - import: {Import("Graph")}
                deployments:
                  - name: ModelC
                    num_replicas: 2
            """);
        var error = Assert.Single(e.Errors);
        Assert.Equal("applications[0].deployments[0].name", error.Path);
        Assert.Contains("Driver, ModelA, ModelB", error.Reason);
    }

    [Fact]
    public void Invalid_yaml_and_unknown_extensions_are_rejected()
    {
        Assert.Equal("$", LoadFails("applications: [\n").Errors[0].Path);
        var txt = Write("serve.txt", "applications: []");
        Assert.Contains("unknown file type", Assert.Throws<ServeConfigException>(() => ServeConfigLoader.Load(txt)).Message);
        Assert.Contains("file not found", Assert.Throws<ServeConfigException>(() => ServeConfigLoader.Load(Path.Combine(_dir, "none.yaml"))).Message);
    }

    [Fact]
    public async Task An_invalid_config_changes_nothing_on_a_running_host()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(Greeter.Bind("running"), new RunOptions { Name = "hello" }).WaitAsync(Bound);

        // The first application is valid, the second is not: nothing is deployed, not even the first.
        Assert.Throws<ServeConfigException>(() => ServeConfigLoader.Load(Write("serve.yaml", $"""
            applications:
              - name: hello
                import: {Import("Hello")}
                args: {"{"} message: replaced {"}"}
              - name: other
                import: {Import("Graph")}
                deployments:
                  - name: ModelA
                    max_ongoing_requests: 0
            """)));

        Assert.Equal("running", await serve.GetHandle<GreeterHandle>("Greeter", "hello").CallAsync());
        Assert.Equal(["hello"], serve.GetStatus().Applications.Select(a => a.Name));
    }

    [Fact]
    public async Task FromImport_builds_a_default_application()
    {
        var config = ServeConfigLoader.FromImport(Import("HelloDefault"));
        await using var serve = await StartAsync();
        await serve.ApplyConfigAsync(config).WaitAsync(Bound);
        Assert.Equal("default greeting", await serve.GetHandle<GreeterHandle>("Greeter", RunOptions.DefaultName).CallAsync());
    }
}
