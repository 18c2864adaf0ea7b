using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using DepUserA;
using DepUserB;
using Serve.Config;
using Serve.Isolation;
using SwapModel;

namespace Serve.Tests;

[Deployment]
public partial class StaticCounter
{
    private static int s_count;

    public int Call() => Interlocked.Increment(ref s_count);
}

public interface IShape
{
    double Area { get; }
}

[Deployment]
public partial class ShapeDescriber
{
    public string Describe(IShape shape) => shape.Area.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

[Deployment]
public partial class IsoLeaf
{
    public string Call(string text) => text + "!";
}

[Deployment]
public partial class IsoIngress(IsoLeafHandle leaf)
{
    public async Task<string> Call(string text) => "ingress(" + await leaf.CallAsync(text) + ") in " +
                                                   (AssemblyLoadContext.GetLoadContext(GetType().Assembly)?.Name ?? "?");
}

[Deployment]
public partial class OrderTaker
{
    public Order Echo(Order order) => order;
}

public sealed record Greeting(string Text);

[Deployment]
public partial class IsoConfigured : IReconfigurable<Greeting>
{
    private Greeting _greeting = new("none");

    public ValueTask ReconfigureAsync(Greeting config, CancellationToken cancellationToken)
    {
        _greeting = config;
        return ValueTask.CompletedTask;
    }

    public string Call() => _greeting.Text + " (" + _greeting.GetType().Assembly.GetName().Name + " in " +
                            AssemblyLoadContext.GetLoadContext(_greeting.GetType().Assembly)!.Name + ")";
}

/// <summary>Builders imported by the config-file tests below.</summary>
public static class IsolationApps
{
    public static Application<SwapModelHandle> Swap() => SwapModel.SwapModel.Bind();
}

public class IsolationTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    private static Task<ServeHost> StartAsync() => ServeHost.StartAsync(o => o.Http.Enabled = false);

    [Fact]
    public async Task Two_deployments_use_two_versions_of_one_dependency_side_by_side()
    {
        await using var serve = await StartAsync();
        var a = await serve.RunAsync(DepUserA.DepUserA.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("DepUserA"))),
            new RunOptions { Name = "a", RoutePrefix = "/a" }).WaitAsync(Bound);
        var b = await serve.RunAsync(DepUserB.DepUserB.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("DepUserB"))),
            new RunOptions { Name = "b", RoutePrefix = "/b" }).WaitAsync(Bound);

        var answers = await Task.WhenAll(a.CallAsync().AsTask(), b.CallAsync().AsTask(), a.CallAsync().AsTask(), b.CallAsync().AsTask());

        Assert.Equal(["DepUserA uses Dep v1 (1.0.0.0)", "DepUserB uses Dep v2 (2.0.0.0)", "DepUserA uses Dep v1 (1.0.0.0)", "DepUserB uses Dep v2 (2.0.0.0)"], answers);
        Assert.DoesNotContain(AssemblyLoadContext.Default.Assemblies, x => x.GetName().Name == "Dep");
    }

    [Fact]
    public async Task Statics_are_per_context()
    {
        await using var serve = await StartAsync();
        var shared = await serve.RunAsync(StaticCounter.Bind().WithOptions(o => o.Name = "Shared"), new RunOptions { Name = "shared", RoutePrefix = "/s" }).WaitAsync(Bound);
        var first = await serve.RunAsync(StaticCounter.Bind().WithOptions(o => { o.Name = "First"; o.RuntimeEnv = RuntimeEnv.Isolated(); }),
            new RunOptions { Name = "first", RoutePrefix = "/f" }).WaitAsync(Bound);
        var second = await serve.RunAsync(StaticCounter.Bind().WithOptions(o => { o.Name = "Second"; o.RuntimeEnv = RuntimeEnv.Isolated(); o.NumReplicas = 2; }),
            new RunOptions { Name = "second", RoutePrefix = "/x" }).WaitAsync(Bound);

        var sharedBefore = await shared.CallAsync();
        for (var i = 0; i < 3; i++)
            await first.CallAsync();
        var firstCount = await first.CallAsync();
        var secondCounts = new List<int>();
        for (var i = 0; i < 4; i++)
            secondCounts.Add(await second.CallAsync());

        Assert.Equal(4, firstCount); // its own counter, untouched by the other copies
        Assert.Equal([1, 2, 3, 4], secondCounts); // two replicas of one version share one context, so one counter
        Assert.Equal(sharedBefore + 1, await shared.CallAsync());
        Assert.Equal(sharedBefore + 2, StaticCounterInDefaultContext());

        var contexts = serve.GetDeployment("Second", "second").Replicas.Select(r => r.LoadContext).Distinct().ToArray();
        Assert.Single(contexts);
        Assert.StartsWith("second/Second@", contexts[0]);
        Assert.Equal("Default", serve.GetDeployment("Shared", "shared").Replicas.Single().LoadContext);
        Assert.Equal(RuntimeEnvKind.Isolated, serve.GetDeployment("First", "first").Options.RuntimeEnv.Kind);
    }

    private static int StaticCounterInDefaultContext() => new StaticCounter().Call();

    [Fact]
    public async Task Shared_types_pass_by_reference_others_are_serialized_and_streams_cross()
    {
        await using var serve = await StartAsync();
        var model = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2")))).WaitAsync(Bound);

        Assert.Equal("v2:x", await model.CallAsync("x"));
        var doubled = await model.DoubleAsync(new Order("apple", 3));
        Assert.Equal(new Order("apple@v2", 6), doubled); // the caller's Order type, filled by the v2 code
        var items = new List<string>();
        await foreach (var item in model.StreamAsync(3))
            items.Add(item);
        Assert.Equal(["v2#0", "v2#1", "v2#2"], items);

        // The untyped path (the one HTTP uses) converts JSON arguments and results too.
        var untyped = serve.GetHandle("SwapModel");
        var boxed = await untyped.InvokeAsync("Double", [System.Text.Json.JsonDocument.Parse("""{"Item":"pear","Quantity":2}""").RootElement]);
        Assert.Equal(new Order("pear@v2", 4), boxed);
    }

    [Fact]
    public async Task Exceptions_cross_with_type_name_message_and_stack_trace()
    {
        await using var serve = await StartAsync();
        var model = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2")))).WaitAsync(Bound);

        var isolated = await Assert.ThrowsAsync<BoundaryException>(async () => await model.BuyAsync("tea"));
        Assert.Equal("SwapModel.OutOfStockException", isolated.ExceptionType);
        Assert.Equal("No tea left.", isolated.Message);
        Assert.Contains("SwapModel.SwapModel.Buy", isolated.StackTrace);
        Assert.StartsWith("SwapModel.OutOfStockException: No tea left.", isolated.ToString());

        var shared = await Assert.ThrowsAsync<InvalidOperationException>(async () => await model.FailAsync("broken"));
        Assert.Equal("broken", shared.Message);
        Assert.Contains("SwapModel.SwapModel.Fail", shared.StackTrace);
    }

    [Fact]
    public async Task An_isolated_replica_calls_a_shared_deployment_through_its_own_copy_of_the_handle()
    {
        await using var serve = await StartAsync();
        var app = IsoIngress.Bind(IsoLeaf.Bind()).WithOptions(o => o.RuntimeEnv = RuntimeEnv.Isolated());
        var handle = await serve.RunAsync(app).WaitAsync(Bound);

        var answer = await handle.CallAsync("hi");

        Assert.StartsWith("ingress(hi!) in default/IsoIngress@", answer);
        Assert.Equal("Default", serve.GetDeployment("IsoLeaf").Replicas.Single().LoadContext);
    }

    [Fact]
    public async Task Hot_swap_rolls_over_under_load_without_a_failed_call_and_unloads_the_old_context()
    {
        await using var serve = await StartAsync();
        var v1 = SwapModel.SwapModel.Bind().WithOptions(o => { o.NumReplicas = 3; o.Version = "1"; o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V1")); });
        var handle = await serve.RunAsync(v1).WaitAsync(Bound);
        Assert.Equal("v1:a", await handle.SlowAsync("a"));
        var oldContext = serve.GetDeployment("SwapModel").Replicas.Select(r => r.LoadContext).Distinct().Single();
        var weak = WeakContext(oldContext);

        using var stop = new CancellationTokenSource();
        var failures = 0;
        var answers = new System.Collections.Concurrent.ConcurrentBag<string>();
        var before = answers;
        var load = Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var bag = Volatile.Read(ref answers); // calls started after the swap answer into the new bag
                try
                {
                    bag.Add(i % 2 == 0 ? await handle.SlowAsync("x") : await handle.CallAsync("x"));
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();
        await TestUtil.WaitUntilAsync(() => answers.Count > 50, "calls flow before the swap");

        var v2 = SwapModel.SwapModel.Bind().WithOptions(o => { o.NumReplicas = 3; o.Version = "2"; o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2")); });
        await serve.RunAsync(v2).WaitAsync(Bound);
        Volatile.Write(ref answers, []);
        await TestUtil.WaitUntilAsync(() => answers.Count > 50, "calls flow after the swap");
        await stop.CancelAsync();
        await Task.WhenAll(load).WaitAsync(Bound);

        Assert.Equal(0, failures);
        Assert.Contains("v1:x", before);
        Assert.All(answers, a => Assert.Equal("v2:x", a));
        var replicas = serve.GetDeployment("SwapModel").Replicas;
        Assert.Equal(3, replicas.Count);
        Assert.All(replicas, r => Assert.Equal("2", r.Version));
        Assert.All(replicas, r => Assert.NotEqual(oldContext, r.LoadContext));

        await CollectAsync(weak);
        Assert.False(weak.IsAlive, $"the old context {oldContext} was not unloaded: something still references it");
    }

    [Fact]
    public async Task Deleting_an_application_unloads_its_isolated_contexts()
    {
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V1"))),
            new RunOptions { Name = "gone", RoutePrefix = "/gone" }).WaitAsync(Bound);
        Assert.Equal("v1:x", await handle.CallAsync("x"));
        var weak = WeakContext(serve.GetDeployment("SwapModel", "gone").Replicas.Single().LoadContext);

        await serve.DeleteAsync("gone").WaitAsync(Bound);

        await CollectAsync(weak);
        Assert.False(weak.IsAlive, "the deleted application's context was not unloaded");
    }

    /// <summary>Collects until the reference dies or a bounded number of rounds pass (an unload takes a few collections).</summary>
    private static async Task CollectAsync(WeakReference weak)
    {
        for (var i = 0; i < 200 && weak.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(10);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference WeakContext(string name) => new(AssemblyLoadContext.All.Single(c => c.Name == name));

    [Fact]
    public async Task A_directory_that_does_not_exist_is_refused_at_RunAsync()
    {
        await using var serve = await StartAsync();
        var missing = Path.Combine(Path.GetTempPath(), "serve-no-such-folder");

        var e = await Assert.ThrowsAsync<IsolationException>(() => serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(missing))));

        Assert.Equal($"Deployment 'SwapModel': RuntimeEnv directory '{missing}' does not exist. Build the deployment's project into it (dotnet build -o \"{missing}\") or fix the path.", e.Message);
        Assert.Empty(serve.ListDeployments());
    }

    [Fact]
    public async Task A_directory_without_the_deployment_assembly_is_refused()
    {
        await using var serve = await StartAsync();

        var e = await Assert.ThrowsAsync<IsolationException>(() => serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("DepUserA")))));

        Assert.Equal($"Deployment 'SwapModel': RuntimeEnv directory '{Fixture("DepUserA")}' has no SwapModel.dll, the assembly that declares SwapModel.SwapModel. " +
                     "Point RuntimeEnv.FromDirectory at the build output folder of that project.", e.Message);
    }

    [Fact]
    public async Task A_class_that_is_not_a_deployment_fails_the_deployment_with_the_fix()
    {
        await using var serve = await StartAsync();

        var e = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.Plain")))).WaitAsync(Bound));

        var path = Path.Combine(Fixture("SwapModel.Plain"), "SwapModel.dll");
        Assert.Contains($"SwapModel.SwapModel in {path} is not a deployment (no [Deployment] generated code for SwapModelHandle). " +
                        "Mark the class [Deployment] and build its project with the Serve package (its source generator registers it).", e.Message);
        Assert.Equal(ServeHealth.Unhealthy, serve.GetDeployment("SwapModel").Status);
    }

    [Fact]
    public async Task A_missing_type_names_the_type_and_file()
    {
        var folder = CopyFixture("DepUserA", "serve-missing-type");
        File.Move(Path.Combine(folder, "DepUserA.dll"), Path.Combine(folder, "SwapModel.dll"));
        await using var serve = await StartAsync();

        var e = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(folder))).WaitAsync(Bound));

        Assert.Contains($"{Path.Combine(folder, "SwapModel.dll")} has no type SwapModel.SwapModel. Build the same deployment class into that folder", e.Message);
    }

    [Fact]
    public async Task An_unresolvable_dependency_names_the_assembly_and_the_folders_searched()
    {
        var folder = CopyFixture("DepUserA", "serve-missing-dep");
        File.Delete(Path.Combine(folder, "Dep.dll"));
        await using var serve = await StartAsync();

        var e = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(DepUserA.DepUserA.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(folder))).WaitAsync(Bound));

        Assert.Contains("dependency Dep, Version=1.0.0.0, Culture=neutral, PublicKeyToken=null of DepUserA.dll cannot be resolved. " +
                        $"Searched: '{folder}' (with DepUserA.deps.json), the shared frameworks (", e.Message);
        Assert.Contains("Copy it into the folder (dotnet build or publish the deployment's project there)", e.Message);
        Assert.DoesNotContain("time(s) in a row", e.Message); // failed at once: retrying cannot help
        Assert.Empty(serve.GetDeployment("DepUserA").Replicas);
    }

    [Fact]
    public async Task A_type_that_cannot_cross_names_method_parameter_and_type()
    {
        await using var serve = await StartAsync();

        var e = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(ShapeDescriber.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.Isolated())).WaitAsync(Bound));

        Assert.Contains("Deployment 'ShapeDescriber': method Describe parameter 'shape' of type Serve.Tests.IShape cannot cross the isolation boundary: the type is not shared " +
                        "(its assembly Serve.Tests is loaded separately in the isolated context) and System.Text.Json cannot serialize it (it is an interface or abstract class, " +
                        "which cannot be created from JSON). Move the type to a contract assembly and share it with RuntimeEnv.Isolated(\"Serve.Tests\")", e.Message);
    }

    [Fact]
    public async Task Types_of_a_declared_contract_assembly_cross_by_reference()
    {
        await using var serve = await StartAsync();
        var copied = await serve.RunAsync(OrderTaker.Bind().WithOptions(o => { o.Name = "Copied"; o.RuntimeEnv = RuntimeEnv.Isolated(); }),
            new RunOptions { Name = "copied", RoutePrefix = "/c" }).WaitAsync(Bound);
        var shared = await serve.RunAsync(OrderTaker.Bind().WithOptions(o => { o.Name = "Shared"; o.RuntimeEnv = RuntimeEnv.Isolated("SwapModel"); }),
            new RunOptions { Name = "shared", RoutePrefix = "/s" }).WaitAsync(Bound);
        var order = new Order("plum", 1);

        var viaCopy = await copied.EchoAsync(order);
        var viaContract = await shared.EchoAsync(order);

        Assert.Equal(order, viaCopy);
        Assert.NotSame(order, viaCopy); // SwapModel loaded again in the context: the order was serialized both ways
        Assert.Same(order, viaContract); // SwapModel shared as a contract: the same object crossed
    }

    [Fact]
    public async Task A_config_file_sets_runtime_env_with_a_folder_relative_to_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("serve-isolation-config-").FullName;
        var relative = Path.GetRelativePath(dir, Fixture("SwapModel.V2")).Replace('\\', '/');
        var path = Path.Combine(dir, "serve.yaml");
        File.WriteAllText(path, $"""
            applications:
              - name: swap
                route_prefix: /swap
                import: {typeof(IsolationApps).Assembly.Location.Replace('\\', '/')}:Serve.Tests.IsolationApps.Swap
                deployments:
                  - name: SwapModel
                    runtime_env:
                      directory: {relative}
                      shared_assemblies: [Some.Contracts]
            """);

        var config = Config.ServeConfigLoader.Load(path);
        await using var serve = await StartAsync();
        await serve.ApplyConfigAsync(config).WaitAsync(Bound);

        var info = serve.GetDeployment("SwapModel", "swap");
        Assert.Equal(RuntimeEnv.FromDirectory(Fixture("SwapModel.V2"), "Some.Contracts"), info.Options.RuntimeEnv);
        Assert.Equal("v2:cfg", await serve.GetHandle<SwapModelHandle>("SwapModel", "swap").CallAsync("cfg"));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void A_config_file_with_a_bad_runtime_env_names_the_key_and_value()
    {
        var dir = Directory.CreateTempSubdirectory("serve-isolation-config-").FullName;
        var path = Path.Combine(dir, "serve.yaml");
        File.WriteAllText(path, $"""
            applications:
              - import: {typeof(IsolationApps).Assembly.Location.Replace('\\', '/')}:Serve.Tests.IsolationApps.Swap
                deployments:
                  - name: SwapModel
                    runtime_env: sandbox
              - name: b
                route_prefix: /b
                import: {typeof(IsolationApps).Assembly.Location.Replace('\\', '/')}:Serve.Tests.IsolationApps.Swap
                deployments:
                  - name: SwapModel
                    runtime_env: {"{"} directory: nowhere, shared_assemblies: [Contracts.dll] {"}"}
            """);

        var e = Assert.Throws<Config.ServeConfigException>(() => Config.ServeConfigLoader.Load(path));

        Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].runtime_env" &&
                                       x.Reason == "expected 'shared', 'isolated', or a mapping with 'directory' (a build output folder) or 'isolated: true', and optional 'shared_assemblies', got \"sandbox\"");
        Assert.Contains(e.Errors, x => x.Path == "applications[1].deployments[0].runtime_env.directory" &&
                                       x.Reason == $"folder not found: {Path.Combine(dir, "nowhere")}; build the deployment's project into it (dotnet build -o <folder>)");
        Assert.Contains(e.Errors, x => x.Path == "applications[1].deployments[0].runtime_env.shared_assemblies[0]" &&
                                       x.Reason.StartsWith("expected a simple assembly name such as MyCompany.Contracts"));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task UserConfig_reaches_an_isolated_replica_as_its_own_config_type_and_reconfigures_in_place()
    {
        await using var serve = await StartAsync();
        var app = IsoConfigured.Bind().WithOptions(o => { o.RuntimeEnv = RuntimeEnv.Isolated(); o.UserConfig = new Greeting("hello"); });
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        var replica = serve.GetDeployment("IsoConfigured").Replicas.Single();

        Assert.Equal($"hello (Serve.Tests in {replica.LoadContext})", await handle.CallAsync());

        await serve.RunAsync(app.WithOptions(o => o.UserConfig = new Greeting("bonjour"))).WaitAsync(Bound);

        Assert.Equal($"bonjour (Serve.Tests in {replica.LoadContext})", await handle.CallAsync());
        Assert.Equal(replica.ReplicaId, serve.GetDeployment("IsoConfigured").Replicas.Single().ReplicaId); // reconfigured, not restarted
    }

    [Fact]
    public async Task An_isolated_ingress_serves_HTTP()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(SwapModel.SwapModel.Bind().WithOptions(o => o.RuntimeEnv = RuntimeEnv.FromDirectory(Fixture("SwapModel.V2"))),
            new RunOptions { RoutePrefix = "/swap" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        using var response = await http.PostAsync("/swap", new StringContent("""["web"]""", System.Text.Encoding.UTF8, "application/json")).WaitAsync(Bound);

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("v2:web", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_current_versions_context_stays_warm_for_the_next_replica_when_scaling_from_zero()
    {
        await using var serve = await StartAsync();
        var app = StaticCounter.Bind().WithOptions(o => { o.Name = "Warm"; o.Version = "1"; o.RuntimeEnv = RuntimeEnv.Isolated(); });
        var handle = await serve.RunAsync(app).WaitAsync(Bound);
        Assert.Equal(1, await handle.CallAsync());
        var context = serve.GetDeployment("Warm").Replicas.Single().LoadContext;

        await serve.RunAsync(app.WithOptions(o => o.NumReplicas = 0)).WaitAsync(Bound);
        Assert.Empty(serve.GetDeployment("Warm").Replicas);
        Assert.Contains(AssemblyLoadContext.All, c => c.Name == context);

        await serve.RunAsync(app.WithOptions(o => o.NumReplicas = 2)).WaitAsync(Bound);

        Assert.All(serve.GetDeployment("Warm").Replicas, r => Assert.Equal(context, r.LoadContext));
        Assert.Equal(2, await handle.CallAsync()); // the same context, so the same statics
    }

    [Fact]
    public void RuntimeEnv_values_compare_by_what_they_load_and_reject_bad_names()
    {
        Assert.Equal(RuntimeEnv.FromDirectory("a/b"), RuntimeEnv.FromDirectory(Path.GetFullPath("a/b")));
        Assert.NotEqual(RuntimeEnv.FromDirectory("a/b"), RuntimeEnv.FromDirectory("a/c"));
        Assert.Equal(RuntimeEnv.Isolated("X", "Y"), RuntimeEnv.Isolated("Y", "X"));
        Assert.NotEqual(RuntimeEnv.Isolated(), RuntimeEnv.Shared);
        var e = Assert.Throws<ArgumentException>(() => RuntimeEnv.Isolated("Contracts.dll"));
        Assert.StartsWith("Shared assembly name \"Contracts.dll\" is not a simple assembly name; write e.g. \"MyCompany.Contracts\" (no path, no .dll).", e.Message);
        Assert.Throws<ArgumentException>(() => RuntimeEnv.FromDirectory(" "));
        Assert.Equal("Isolated sharing A", RuntimeEnv.Isolated().WithSharedAssemblies("A").ToString());
    }

    private static string CopyFixture(string fixture, string prefix)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.EnumerateFiles(Fixture(fixture)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }
}
