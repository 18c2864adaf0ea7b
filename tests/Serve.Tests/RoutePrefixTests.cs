namespace Serve.Tests;

/// <summary>Route prefixes given through the API: one rule with the config loader, normalised, and never silently shadowed.</summary>
public sealed class RoutePrefixTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync(bool http = true) => ServeHost.StartAsync(o =>
    {
        o.Http.Enabled = http;
        o.Http.Port = 0;
    }).WaitAsync(Bound);

    [Fact]
    public async Task Two_applications_under_one_prefix_are_refused_and_the_first_keeps_serving()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpHello.Bind("from a"), new RunOptions { Name = "a", RoutePrefix = "/same" }).WaitAsync(Bound);

        // "/same/" is "/same": before, b would have shadowed a silently (or not, depending on name order).
        var e = await Assert.ThrowsAsync<RoutePrefixConflictException>(() =>
            serve.RunAsync(HttpHello.Bind("from b"), new RunOptions { Name = "b", RoutePrefix = "/same/" }).WaitAsync(Bound));

        Assert.Equal("Application 'b' cannot be served under route prefix \"/same\": application 'a' already is. " +
                     "Give each application its own route prefix (RunOptions.RoutePrefix, or route_prefix in a config file), or delete 'a' first.", e.Message);
        Assert.Equal(("b", "/same", "a"), (e.ApplicationName, e.RoutePrefix, e.OtherApplicationName));
        Assert.Equal(["a"], serve.GetStatus().Applications.Select(a => a.Name));
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        Assert.Equal("from a", await http.GetStringAsync("/same").WaitAsync(Bound));
    }

    [Fact]
    public async Task Two_applications_without_a_prefix_collide_on_the_default_one()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpHello.Bind("one"), new RunOptions { Name = "one" }).WaitAsync(Bound);

        var e = await Assert.ThrowsAsync<RoutePrefixConflictException>(() =>
            serve.RunAsync(HttpHello.Bind("two"), new RunOptions { Name = "two" }).WaitAsync(Bound));

        Assert.StartsWith("Application 'two' cannot be served under route prefix \"/\": application 'one' already is.", e.Message);
    }

    [Fact]
    public async Task Redeploying_an_application_keeps_its_own_prefix_and_a_deleted_ones_prefix_is_free_again()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpHello.Bind("v1"), new RunOptions { Name = "a", RoutePrefix = "/a/" }).WaitAsync(Bound);
        await serve.RunAsync(HttpHello.Bind("v2"), new RunOptions { Name = "a", RoutePrefix = "/a" }).WaitAsync(Bound);
        Assert.Equal("/a", Assert.Single(serve.GetStatus().Applications).RoutePrefix);

        await serve.DeleteAsync("a").WaitAsync(Bound);
        await serve.RunAsync(HttpHello.Bind("b"), new RunOptions { Name = "b", RoutePrefix = "/a" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        Assert.Equal("b", await http.GetStringAsync("/a").WaitAsync(Bound));
    }

    [Fact]
    public async Task Without_http_ingress_applications_may_share_the_default_prefix()
    {
        await using var serve = await StartAsync(http: false);
        await serve.RunAsync(Greeter.Bind("one"), new RunOptions { Name = "one" }).WaitAsync(Bound);
        await serve.RunAsync(Greeter.Bind("two"), new RunOptions { Name = "two" }).WaitAsync(Bound);
        Assert.Equal(["one", "two"], serve.GetStatus().Applications.Select(a => a.Name));
    }

    [Theory]
    [InlineData("/a b", "holds a space, which a route prefix may not")]
    [InlineData("/x#y", "holds '#', which a route prefix may not")]
    [InlineData("/a/./b", "has a '.' segment")]
    [InlineData("a", "must start with '/', e.g. \"/a\"")]
    public async Task RunOptions_RoutePrefix_outside_a_url_path_is_refused_naming_the_application(string prefix, string problem)
    {
        await using var serve = await StartAsync(http: false);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            serve.RunAsync(Greeter.Bind("x"), new RunOptions { Name = "app", RoutePrefix = prefix }).WaitAsync(Bound));
        Assert.StartsWith($"Application 'app': RunOptions.RoutePrefix = \"{prefix}\" is not a route prefix: it {problem}", e.Message);
        Assert.Empty(serve.GetStatus().Applications);
    }

    [Fact]
    public async Task DeploymentOptions_RoutePrefix_of_the_ingress_is_checked_with_the_same_rule()
    {
        await using var serve = await StartAsync(http: false);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            serve.RunAsync(Greeter.Bind("x").WithOptions(o => o.RoutePrefix = "/x?y"), new RunOptions { Name = "app" }).WaitAsync(Bound));
        Assert.StartsWith("Deployment 'Greeter': option RoutePrefix = \"/x?y\" is out of range: it holds '?', which a route prefix may not", e.Message);

        var options = new DeploymentOptions { Name = "Greeter", RoutePrefix = "/é" };
        var direct = Assert.Throws<ArgumentOutOfRangeException>(() => options.Validate("Greeter"));
        Assert.StartsWith("Deployment 'Greeter': option RoutePrefix = \"/é\" is out of range: it holds the character U+00E9, which a route prefix may not", direct.Message);
    }

    [Theory]
    [InlineData(nameof(DeploymentOptions.NumReplicas), "2147483647", "must be 0 or more and at most 10000")]
    [InlineData(nameof(DeploymentOptions.NumCpus), "1E+308", "must be a finite number of 0 or more and at most 10000")]
    [InlineData(nameof(DeploymentOptions.NumCpus), "NaN", "must be a finite number of 0 or more and at most 10000")]
    [InlineData(nameof(DeploymentOptions.NumGpus), "1E+308", "must be a finite number of 0 or more and at most 1000")]
    public void Absurd_option_values_are_refused_naming_the_option(string option, string value, string rule)
    {
        var options = new DeploymentOptions { Name = "Model" };
        switch (option)
        {
            case nameof(DeploymentOptions.NumReplicas): options.NumReplicas = int.MaxValue; break;
            case nameof(DeploymentOptions.NumCpus): options.NumCpus = value == "NaN" ? double.NaN : 1e308; break;
            case nameof(DeploymentOptions.NumGpus): options.NumGpus = 1e308; break;
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => options.Validate("Model"));
        Assert.StartsWith($"Deployment 'Model': option {option} = {value} is out of range: it {rule}", e.Message);
    }

    [Fact]
    public void Autoscaling_replica_counts_share_the_replica_limit()
    {
        var options = new DeploymentOptions { Name = "Model", Autoscaling = new AutoscalingOptions { MaxReplicas = 1_000_000 } };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => options.Validate("Model"));
        Assert.StartsWith("Deployment 'Model': option Autoscaling.MaxReplicas = 1000000 is out of range: it must be at most 10000", e.Message);
    }
}
