using Microsoft.Extensions.DependencyInjection;

namespace Serve.Tests;

public class HandleAndGraphTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Greeter_answers_through_its_typed_handle()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        GreeterHandle greeter = await serve.RunAsync(Greeter.Bind("Hello world!")).WaitAsync(Bound);

        Assert.Equal("Hello world!", await greeter.CallAsync());
        Assert.Equal("HELLO WORLD!!", await greeter.ShoutAsync("!"));
    }

    [Fact]
    public async Task Composition_deploys_the_whole_graph_and_passes_handles_to_constructors()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var driver = await serve.RunAsync(Driver.Bind(ModelA.Bind(), ModelB.Bind())).WaitAsync(Bound);

        Assert.Equal(3 * 10 + 3 + 1, await driver.CallAsync(3));
        Assert.Equal(["Driver", "ModelA", "ModelB"], serve.ListDeployments().Select(d => d.Name).Order());
        Assert.True(serve.GetDeployment("Driver").IsIngress);
        Assert.False(serve.GetDeployment("ModelA").IsIngress);
    }

    [Fact]
    public async Task A_deployment_bound_twice_is_deployed_once()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var a = ModelA.Bind();
        var pair = await serve.RunAsync(Pair.Bind(a, a)).WaitAsync(Bound);

        Assert.Equal(40, await pair.CallAsync(2));
        Assert.Equal(["ModelA", "Pair"], serve.ListDeployments().Select(d => d.Name).Order());
        Assert.Single(serve.GetDeployment("ModelA").Replicas);
    }

    [Fact]
    public async Task Two_different_bindings_under_one_name_are_refused_with_the_fix()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var app = Pair.Bind(ModelA.Bind(), ModelA.Bind().WithOptions(o => o.NumReplicas = 3));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => serve.RunAsync(app));
        Assert.Contains("'ModelA'", error.Message);
        Assert.Contains("WithOptions(o => o.Name", error.Message);
        Assert.Empty(serve.ListDeployments());

        // Renaming one makes it legal: two deployments of one class.
        var renamed = Pair.Bind(ModelA.Bind(), ModelA.Bind().WithOptions(o => o.Name = "ModelA2"));
        var pair = await serve.RunAsync(renamed).WaitAsync(Bound);
        Assert.Equal(20, await pair.CallAsync(1));
        Assert.Equal(["ModelA", "ModelA2", "Pair"], serve.ListDeployments().Select(d => d.Name).Order());
    }

    [Fact]
    public async Task WithOptions_returns_a_new_application_and_leaves_the_original_alone()
    {
        var original = Greeter.Bind("hi");
        var changed = original.WithOptions(o => { o.NumReplicas = 4; o.MaxOngoingRequests = 1; });

        Assert.Equal(1, original.GetOptions().NumReplicas);
        Assert.Equal(5, original.GetOptions().MaxOngoingRequests);
        Assert.Equal(4, changed.GetOptions().NumReplicas);
        Assert.Equal(1, changed.GetOptions().MaxOngoingRequests);

        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(changed).WaitAsync(Bound);
        var info = serve.GetDeployment("Greeter");
        Assert.Equal(4, info.Replicas.Count);
        Assert.All(info.Replicas, r => Assert.Equal(ReplicaState.Running, r.State));
    }

    [Fact]
    public void Attribute_values_are_the_default_options()
    {
        var options = Holder.Bind(new Probe()).GetOptions();
        Assert.Equal("Holder", options.Name);
        Assert.Equal(2, options.NumReplicas);
        Assert.Equal(2, options.MaxOngoingRequests);
        Assert.Equal(DeploymentOptions.Unbounded, options.MaxQueuedRequests);
    }

    [Theory]
    [InlineData("NumReplicas", "-1")]
    [InlineData("MaxOngoingRequests", "0")]
    [InlineData("MaxQueuedRequests", "-2")]
    [InlineData("NumGpus", "-0.5")]
    [InlineData("NumGpus", "1.5")]
    [InlineData("NumCpus", "-1")]
    public void An_invalid_option_names_the_deployment_option_and_value(string option, string value)
    {
        var app = Greeter.Bind("x");
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => app.WithOptions(o =>
        {
            switch (option)
            {
                case "NumReplicas": o.NumReplicas = int.Parse(value); break;
                case "MaxOngoingRequests": o.MaxOngoingRequests = int.Parse(value); break;
                case "MaxQueuedRequests": o.MaxQueuedRequests = int.Parse(value); break;
                case "NumGpus": o.NumGpus = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                case "NumCpus": o.NumCpus = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            }
        }));
        Assert.Equal(option, error.ParamName);
        Assert.Contains("Deployment 'Greeter'", error.Message);
        Assert.Contains($"{option} = {value}", error.Message);
    }

    [Fact]
    public async Task ReplicaContext_and_FromServices_parameters_are_injected_and_left_out_of_Bind()
    {
        var services = new ServiceCollection().AddSingleton<IClock, FixedClock>().BuildServiceProvider();
        await using var serve = await ServeHost.StartAsync(o => { o.Services = services; o.Http.Enabled = false; });
        var handle = await serve.RunAsync(Injected.Bind("at"), new RunOptions { Name = "clocks" }).WaitAsync(Bound);

        Assert.Equal("at clocks/Injected 12:00", await handle.CallAsync());
    }

    [Fact]
    public async Task A_missing_FromServices_service_fails_the_deployment_naming_the_parameter()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.ReplicaStartBackoff = TimeSpan.FromMilliseconds(1); o.Http.Enabled = false; });
        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Injected.Bind("at")).WaitAsync(Bound));
        Assert.Contains("clock", error.Message);
        Assert.Contains("IClock", error.Message);
    }

    [Fact]
    public async Task A_function_deployment_is_called_through_its_handle()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        PreprocessHandle handle = await serve.RunAsync(PreprocessDeployment.Bind()).WaitAsync(Bound);
        Assert.Equal(2, await handle.CallAsync(1));
    }

    [Fact]
    public async Task Stream_and_void_methods_work_through_the_handle()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var handle = await serve.RunAsync(Streamer.Bind()).WaitAsync(Bound);

        var items = new List<int>();
        await foreach (var i in handle.CountAsync(4))
            items.Add(i);
        Assert.Equal([0, 1, 2, 3], items);

        var probe = new Probe();
        await handle.TouchAsync(probe);
        Assert.Contains("touched", probe.Constructed);
    }

    [Fact]
    public async Task Handles_by_name_typed_and_untyped()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(Greeter.Bind("hey")).WaitAsync(Bound);

        var typed = serve.GetHandle<GreeterHandle>("Greeter");
        Assert.Equal("hey", await typed.CallAsync());

        var untyped = serve.GetHandle("Greeter", RunOptions.DefaultName);
        Assert.Equal("HEY?", await untyped.InvokeAsync("Shout", ["?"]));
        Assert.Equal("HEY?", await untyped.InvokeAsync("ShoutAsync", ["?"]));
        Assert.Equal("hey", await untyped.InvokeCallAsync([]));

        var noMethod = await Assert.ThrowsAsync<MissingMethodException>(async () => await untyped.InvokeAsync("Whisper", []));
        Assert.Contains("Whisper", noMethod.Message);
        Assert.Contains("Shout(suffix)", noMethod.Message);

        var wrongType = await Assert.ThrowsAsync<ArgumentException>(async () => await untyped.InvokeAsync("Shout", [42]));
        Assert.Contains("suffix", wrongType.Message);

        Assert.Throws<InvalidCastException>(() => serve.GetHandle<ModelAHandle>("Greeter"));
    }

    [Fact]
    public async Task A_handle_to_a_missing_deployment_names_it()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(Greeter.Bind("hey")).WaitAsync(Bound);

        var error = Assert.Throws<DeploymentNotFoundException>(() => serve.GetHandle<ModelAHandle>("ModelA"));
        Assert.Contains("'ModelA'", error.Message);
        Assert.Contains("default/Greeter", error.Message);
        Assert.Throws<DeploymentNotFoundException>(() => serve.GetDeployment("Nope"));
        Assert.Throws<DeploymentNotFoundException>(() => serve.GetHandle("Greeter", "other-app"));
    }

    [Fact]
    public async Task The_same_deployment_in_two_applications_needs_the_application_name()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(Greeter.Bind("one"), new RunOptions { Name = "one" }).WaitAsync(Bound);
        await serve.RunAsync(Greeter.Bind("two"), new RunOptions { Name = "two" }).WaitAsync(Bound);

        var error = Assert.Throws<DeploymentNotFoundException>(() => serve.GetHandle<GreeterHandle>("Greeter"));
        Assert.Contains("one, two", error.Message);
        Assert.Equal("two", await serve.GetHandle<GreeterHandle>("Greeter", "two").CallAsync());
        Assert.Equal(["one", "two"], serve.GetStatus().Applications.Select(a => a.Name));
    }

    [Fact]
    public async Task Exceptions_in_user_code_reach_the_caller_with_type_and_message()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var thrower = await serve.RunAsync(Thrower.Bind()).WaitAsync(Bound);

        var sync = await Assert.ThrowsAsync<KeyNotFoundException>(async () => await thrower.CallAsync(7));
        Assert.Equal("no item 7", sync.Message);
        var async = await Assert.ThrowsAsync<FormatException>(async () => await thrower.FailAsync());
        Assert.Equal("bad format", async.Message);

        // The replica is still healthy and its slot was released.
        Assert.Equal(0, await thrower.CallAsync(0));
        Assert.All(serve.GetDeployment("Thrower").Replicas, r => Assert.Equal(0, r.OngoingRequests));
    }
}

public class RegistryTests
{
    [Fact]
    public void The_generated_manifest_registers_every_deployment_of_the_assembly()
    {
        // Touching a type of this assembly has run its module initializer.
        Assert.Same(Greeter.Bind("x").Definition, DeploymentRegistry.Find(typeof(Greeter)));
        Assert.Same(Greeter.Bind("x").Definition, DeploymentRegistry.Find(typeof(GreeterHandle)));
        var preprocess = Assert.Single(DeploymentRegistry.Find("Preprocess"));
        Assert.True(preprocess.IsFunction);
        Assert.Equal(typeof(PreprocessHandle), preprocess.HandleType);
        Assert.Contains(DeploymentRegistry.All, d => d.Name == "Driver");
        Assert.Null(DeploymentRegistry.Find(typeof(Probe)));
    }
}
