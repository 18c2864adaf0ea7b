using Serve.Config;

namespace Serve.Tests;

/// <summary>Hostile or absurd config documents fail at load with the key path and the limit, never taking the process down.</summary>
public sealed class ConfigLimitsTests : IDisposable
{
    private static readonly string TestAssembly = typeof(TestApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-config-limits-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Import(string method) => $"{TestAssembly}:Serve.Tests.TestApps.{method}";

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static ServeConfigError Fails(string text, bool yaml = true) =>
        Assert.Single(Assert.Throws<ServeConfigException>(() => ServeConfigLoader.LoadText(text, "doc", yaml)).Errors);

    /// <summary>Nine levels of nine aliases: 560 bytes that expand to 9^9 (387 million) strings.</summary>
    internal const string BillionLaughs = """
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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_deeply_nested_document_is_refused_at_the_depth_limit(bool yaml)
    {
        // 100 KB of '[' overflowed the stack in YamlDotNet's representation model and killed the process.
        var error = Fails(new string('[', 100_000), yaml);

        Assert.Contains("nested more than 64 levels deep", error.Reason);
        Assert.StartsWith("$", error.Path);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Sixty_four_levels_are_read_and_sixty_five_are_not(bool yaml)
    {
        // 64 levels parse: the document is then refused for its shape (a list, not a mapping), not its depth.
        var deepest = Fails(new string('[', 64) + new string(']', 64), yaml);
        Assert.Equal("$", deepest.Path);
        Assert.StartsWith("expected a mapping", deepest.Reason);

        Assert.Contains("nested more than 64 levels deep", Fails(new string('[', 65) + new string(']', 65), yaml).Reason);
    }

    [Fact]
    public void Deep_nesting_in_a_file_fails_Load_with_the_file_name()
    {
        var path = Write("deep.yaml", "applications:\n  - user_config: " + new string('[', 100_000));
        var e = Assert.Throws<ServeConfigException>(() => ServeConfigLoader.Load(path));
        Assert.Contains("deep.yaml: applications[0].user_config", e.Message);
        Assert.Contains("nested more than 64 levels deep", e.Message);
    }

    [Fact]
    public void Yaml_alias_expansion_is_refused_beyond_the_value_limit()
    {
        var error = Fails(BillionLaughs);

        Assert.Contains("more than 100,000 values once alias *", error.Reason);
        Assert.Matches(@"^[a-i]\[\d\]$", error.Path);
    }

    [Fact]
    public void Aliases_within_the_limit_still_work()
    {
        var config = ServeConfigLoader.LoadText($"""
            applications:
              - name: a
                route_prefix: /a
                import: {Import("Hello")}
                args: &shared
                  message: shared
              - name: b
                route_prefix: /b
                import: {Import("Hello")}
                args: *shared
            """, "doc", yaml: true);

        Assert.Equal(["shared", "shared"], config.Applications.Select(a => (string)a.Args!["message"]!));
    }

    [Fact]
    public void An_alias_to_an_unknown_anchor_names_the_key()
    {
        var error = Fails("applications: *nowhere\n");
        Assert.Equal("applications", error.Path);
        Assert.Contains("alias *nowhere refers to no anchor", error.Reason);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_duplicate_key_is_an_error_naming_its_path(bool yaml)
    {
        var text = yaml
            ? $"applications:\n  - import: {Import("Hello")}\n    deployments:\n      - name: Greeter\n        num_replicas: 1\n        num_replicas: 2\n"
            : $$"""{ "applications": [ { "import": "{{Import("Hello")}}", "deployments": [ { "name": "Greeter", "num_replicas": 1, "num_replicas": 2 } ] } ] }""";

        var error = Fails(text, yaml);

        Assert.Equal("applications[0].deployments[0].num_replicas", error.Path);
        Assert.StartsWith("key 'num_replicas' appears twice in the same mapping", error.Reason);
    }

    [Fact]
    public void A_duplicate_top_level_json_key_is_a_config_error_not_an_ArgumentException()
    {
        var error = Fails("""{ "applications": [], "applications": [] }""", yaml: false);
        Assert.Equal("applications", error.Path);
        Assert.Contains("appears twice", error.Reason);
    }

    [Fact]
    public void A_file_over_4_MiB_is_refused_before_it_is_read()
    {
        var path = Write("big.yaml", "# " + new string('x', ServeConfigLoader.MaxDocumentBytes));
        var e = Assert.Throws<ServeConfigException>(() => ServeConfigLoader.Load(path));
        Assert.Contains("big.yaml: $: the document is 4,194,306 bytes; a config may be at most 4,194,304 bytes (4 MiB)", e.Message);
    }

    [Theory]
    [InlineData("num_replicas: 2147483647", "num_replicas", "expected an integer of 0 or more, at most 10000, got 2147483647")]
    [InlineData("num_replicas: -1", "num_replicas", "expected an integer of 0 or more, got -1")]
    [InlineData("num_cpus: 1e308", "num_cpus", "expected a number of 0 or more, at most 10000, got 1E+308")]
    [InlineData("num_cpus: .nan", "num_cpus", "expected a number of 0 or more, got \".nan\"")]
    [InlineData("num_cpus: -0.5", "num_cpus", "expected a number of 0 or more, got -0.5")]
    [InlineData("num_gpus: 1e9", "num_gpus", "expected a number of 0 or more, at most 1000, got 1000000000")]
    [InlineData("num_gpus: 1.5", "num_gpus", "Deployment 'Greeter': option NumGpus = 1.5 is out of range: it above 1 must be a whole number of GPUs")]
    [InlineData("resources: { tpu: 1e300 }", "resources.tpu", "expected a number of 0 or more, at most 1e12, got 1E+300")]
    [InlineData("autoscaling_config: { max_replicas: 1000000 }", "autoscaling_config.max_replicas", "expected an integer of 1 or more, at most 10000, got 1000000")]
    [InlineData("autoscaling_config: { min_replicas: 3, max_replicas: 2 }", "autoscaling_config", "Autoscaling.MaxReplicas must be at least 1 and at least MinReplicas (3)")]
    public void Absurd_numbers_fail_at_load_with_the_key_path(string setting, string key, string reason)
    {
        var error = Fails($"applications:\n  - import: {Import("Hello")}\n    args: {{ message: hi }}\n    deployments:\n      - name: Greeter\n        {setting}\n");

        Assert.Equal($"applications[0].deployments[0].{key}", error.Path);
        Assert.StartsWith(reason, error.Reason);
    }

    [Theory]
    [InlineData("not-an-ip")]
    [InlineData("example.com")]
    [InlineData("8000")]
    [InlineData("")]
    public void Http_host_must_be_an_ip_address_or_localhost(string host)
    {
        var error = Fails($"http:\n  host: \"{host}\"\napplications:\n  - import: {Import("HelloDefault")}\n");
        Assert.Equal("http.host", error.Path);
        Assert.Equal($"expected an IP address such as \"127.0.0.1\", \"0.0.0.0\" or \"::\", or \"localhost\", got \"{host}\"; the host listens on an address, so other host names are not accepted", error.Reason);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    [InlineData("::1")]
    [InlineData("localhost")]
    public void Http_host_accepts_addresses_and_localhost(string host) =>
        Assert.Equal(host, ServeConfigLoader.LoadText($"http:\n  host: \"{host}\"\napplications:\n  - import: {Import("HelloDefault")}\n", "doc", yaml: true).Http.Host);

    [Fact]
    public void A_trailing_slash_is_dropped_from_a_route_prefix()
    {
        var config = ServeConfigLoader.LoadText($"applications:\n  - route_prefix: /hello/\n    import: {Import("HelloDefault")}\n", "doc", yaml: true);
        Assert.Equal("/hello", Assert.Single(config.Applications).RoutePrefix);
    }

    [Fact]
    public void Route_prefixes_that_differ_only_by_a_trailing_slash_collide()
    {
        var error = Fails($"""
            applications:
              - name: first
                route_prefix: /a
                import: {Import("HelloDefault")}
              - name: second
                route_prefix: /a/
                import: {Import("HelloDefault")}
            """);

        Assert.Equal("applications[1].route_prefix", error.Path);
        Assert.Equal("application \"second\" would be served under route prefix \"/a\", which application \"first\" (applications[0]) already uses; give each application its own route_prefix", error.Reason);
    }

    [Fact]
    public void Two_applications_without_a_route_prefix_collide_on_the_default()
    {
        var error = Fails($"""
            applications:
              - name: one
                import: {Import("HelloDefault")}
              - name: two
                import: {Import("HelloDefault")}
            """);

        Assert.Equal("applications[1]", error.Path);
        Assert.Equal("application \"two\" would be served under route prefix \"/\" (no route_prefix given), which application \"one\" (applications[0]) already uses; give each application its own route_prefix", error.Reason);
    }

    [Theory]
    [InlineData("/a b", "holds a space, which a route prefix may not")]
    [InlineData("/x?y=1", "holds '?', which a route prefix may not")]
    [InlineData("/caf%C3%A9", "holds '%', which a route prefix may not")]
    [InlineData("/café", "holds the character U+00E9, which a route prefix may not")]
    [InlineData("/{id}", "holds '{', which a route prefix may not")]
    [InlineData("/a//b", "has an empty segment ('//')")]
    [InlineData("/a/../b", "has a '..' segment")]
    [InlineData("greeter", "must start with '/', e.g. \"/greeter\"")]
    public void Route_prefixes_outside_a_url_path_are_refused(string prefix, string problem)
    {
        var error = Fails($"applications:\n  - name: app\n    route_prefix: \"{prefix}\"\n    import: {Import("HelloDefault")}\n");

        Assert.Equal("applications[0].route_prefix", error.Path);
        Assert.StartsWith($"application \"app\": \"{prefix}\" is not a route prefix: it {problem}", error.Reason);
        if (problem.StartsWith("holds", StringComparison.Ordinal))
            Assert.Contains("use a URL path of ASCII letters, digits, '/' and - . _ ~ ! $ & ' ( ) * + , ; = : @", error.Reason);
    }
}
