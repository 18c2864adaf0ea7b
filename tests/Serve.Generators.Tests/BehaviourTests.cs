using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using System.Text.Json;
using Serve.CodeGeneration;

namespace Serve.Generators.Tests;

/// <summary>
/// The generated code at run time: user code plus generated code compiled into an in-memory assembly, loaded, and
/// driven through the definition, the invoker switch and the argument structs. (Typed handles need a running host,
/// which the runtime's tests exercise end to end.)
/// </summary>
public sealed class BehaviourTests
{
    private const string Source = """
        using System;
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        [Deployment(NumReplicas = 2, MaxOngoingRequests = 8)]
        public partial class Greeter(string msg)
        {
            public string Call() => msg;
            public Task<string> Shout(string suffix) => Task.FromResult(msg.ToUpperInvariant() + suffix);
            public void Forget(int x) { }
            public async IAsyncEnumerable<int> Count(int n, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
            {
                for (var i = 0; i < n; i++) { await Task.Yield(); yield return i; }
            }
            public bool Cancelled(CancellationToken ct) => ct.IsCancellationRequested;
        }

        public interface IClock { string Name { get; } }
        public interface ILog { }
        public sealed class Clock : IClock { public string Name => "clock"; }
        public sealed class Services : IServiceProvider
        {
            public object? GetService(Type type) => type == typeof(IClock) ? new Clock() : null;
        }

        [Deployment]
        public partial class Stamper(string prefix, ReplicaContext context, [FromServices] IClock clock, [FromServices] ILog? log)
        {
            public string Call() => prefix + ":" + context.ReplicaId + ":" + clock.Name + (log is null ? ":nolog" : ":log");
        }

        public sealed record Thresholds(double Min, double Max);

        [Deployment]
        public partial class Filter : IReconfigurable<Thresholds>
        {
            private Thresholds _t = new(0, 1);
            public ValueTask ReconfigureAsync(Thresholds config, CancellationToken cancellationToken) { _t = config; return default; }
            public bool Call(double x) => x >= _t.Min && x <= _t.Max;
        }

        public static partial class Preprocessing
        {
            [Deployment] public static int Preprocess(int x) => x + 1;
        }
        """;

    private static readonly Lazy<Assembly> s_assembly = new(Compile);

    [Fact]
    public async Task InvokerDispatchesByMethodId()
    {
        var (definition, instance) = Greeter();
        var call = definition.Methods.Single(m => m.IsCall);
        var shout = definition.Methods.Single(m => m.Name == "Shout");

        Assert.Equal("Hello", await definition.Invoker.InvokeAsync(instance, call.MethodId, Array.Empty<object?>(), default));
        Assert.Equal("HELLO!", await definition.Invoker.InvokeAsync(instance, shout.MethodId, new object?[] { "!" }, default));
        // Arguments that arrive as JSON (an HTTP body) are deserialized to the parameter type.
        Assert.Equal("HELLO?", await definition.Invoker.InvokeAsync(instance, shout.MethodId, new object?[] { JsonDocument.Parse("\"?\"").RootElement }, default));
    }

    [Fact]
    public async Task InvokerHandlesVoidStreamsAndTokens()
    {
        var (definition, instance) = Greeter();
        var forget = definition.Methods.Single(m => m.Name == "Forget");
        Assert.Equal(DeploymentMethodKind.Void, forget.Kind);
        Assert.Null(await definition.Invoker.InvokeAsync(instance, forget.MethodId, new object?[] { 1 }, default));

        var count = definition.Methods.Single(m => m.Name == "Count");
        Assert.Equal(DeploymentMethodKind.Stream, count.Kind);
        Assert.Equal(new[] { "n" }, count.ParameterNames);
        var stream = Assert.IsAssignableFrom<IAsyncEnumerable<int>>(await definition.Invoker.InvokeAsync(instance, count.MethodId, new object?[] { 3 }, default));
        var items = new List<int>();
        await foreach (var item in stream)
            items.Add(item);
        Assert.Equal(new[] { 0, 1, 2 }, items);

        var cancelled = definition.Methods.Single(m => m.Name == "Cancelled");
        Assert.Empty(cancelled.ParameterTypes);
        Assert.Equal(true, await definition.Invoker.InvokeAsync(instance, cancelled.MethodId, Array.Empty<object?>(), new CancellationToken(canceled: true)));
        Assert.Equal(false, await definition.Invoker.InvokeAsync(instance, cancelled.MethodId, Array.Empty<object?>(), CancellationToken.None));
    }

    [Fact]
    public async Task InvokerRejectsUnknownIdsAndWrongArguments()
    {
        var (definition, instance) = Greeter();
        var shout = definition.Methods.Single(m => m.Name == "Shout");

        var unknown = await Assert.ThrowsAsync<InvalidOperationException>(async () => await definition.Invoker.InvokeAsync(instance, 42, Array.Empty<object?>(), default));
        Assert.Contains("'Greeter' has no method with id 42", unknown.Message);
        var count = await Assert.ThrowsAsync<ArgumentException>(async () => await definition.Invoker.InvokeAsync(instance, shout.MethodId, Array.Empty<object?>(), default));
        Assert.Contains("'Shout' takes 1 argument(s)", count.Message);
        var type = await Assert.ThrowsAsync<ArgumentException>(async () => await definition.Invoker.InvokeAsync(instance, shout.MethodId, new object?[] { 5 }, default));
        Assert.Contains("'suffix'", type.Message);
    }

    [Fact]
    public async Task ArgumentStructsCallTheUserMethodDirectly()
    {
        var (definition, instance) = Greeter();
        var invocations = instance.GetType().GetNestedType("__ServeInvocations", BindingFlags.NonPublic)!;
        var shoutType = invocations.GetNestedType("Shout_1")!;
        Assert.True(shoutType.IsValueType);

        var shout = (IInvocation<string>)Activator.CreateInstance(shoutType, "?")!;
        Assert.Equal(definition.Methods.Single(m => m.Name == "Shout").MethodId, shout.MethodId);
        Assert.Equal((int)shoutType.GetField("Id")!.GetRawConstantValue()!, shout.MethodId);
        Assert.Equal("HELLO?", await shout.InvokeAsync(instance, default));
    }

    [Fact]
    public void DefinitionDescribesTheDeployment()
    {
        var (definition, _) = Greeter();
        Assert.Equal("Greeter", definition.Name);
        Assert.Equal("Demo.Greeter", definition.ImplementationType.FullName);
        Assert.Equal("Demo.GreeterHandle", definition.HandleType.FullName);
        Assert.True(definition.HandleType.IsSubclassOf(typeof(DeploymentHandle)));
        Assert.Equal(2, definition.DefaultOptions.NumReplicas);
        Assert.Equal(8, definition.DefaultOptions.MaxOngoingRequests);
        Assert.Equal("Greeter", definition.DefaultOptions.Name);
        Assert.False(definition.IsFunction);
        Assert.Null(definition.UserConfigType);
        Assert.Equal(new[] { "Call", "Shout", "Forget", "Count", "Cancelled" }, definition.Methods.Select(m => m.Name));
        Assert.Equal(new[] { "CallAsync", "ShoutAsync", "ForgetAsync", "CountAsync", "CancelledAsync" }, definition.Methods.Select(m => m.HandleName));
        Assert.Equal(definition.Methods.Count, definition.Methods.Select(m => m.MethodId).Distinct().Count());
    }

    [Fact]
    public void BindCapturesConstructorArgumentsAndDefaultOptions()
    {
        var greeter = s_assembly.Value.GetType("Demo.Greeter")!;
        var app = Assert.IsAssignableFrom<Application>(greeter.GetMethod("Bind")!.Invoke(null, new object?[] { "Hi" }));
        Assert.Equal(0, app.ConstructorIndex);
        Assert.Equal(new object?[] { "Hi" }, app.Arguments);
        Assert.Equal("Greeter", app.DeploymentName);
        Assert.Equal(2, app.GetOptions().NumReplicas);
        Assert.Same(Definition(greeter), app.Definition);
    }

    [Fact]
    public void ManifestRegistersEveryDefinition()
    {
        var assembly = s_assembly.Value;
        RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        foreach (var name in new[] { "Demo.Greeter", "Demo.Stamper", "Demo.Filter" })
        {
            var type = assembly.GetType(name)!;
            Assert.Same(Definition(type), DeploymentRegistry.Find(type));
        }
        var function = Definition(assembly.GetType("Demo.PreprocessDeployment")!);
        Assert.Same(function, DeploymentRegistry.Find(function.HandleType));
    }

    [Fact]
    public async Task FunctionDeploymentCallsTheStaticMethod()
    {
        var definition = Definition(s_assembly.Value.GetType("Demo.PreprocessDeployment")!);
        Assert.True(definition.IsFunction);
        Assert.Equal("Demo.Preprocessing", definition.ImplementationType.FullName);
        Assert.Equal("Demo.PreprocessHandle", definition.HandleType.FullName);
        var call = Assert.Single(definition.Methods);
        Assert.True(call.IsCall);
        Assert.Equal("CallAsync", call.HandleName);
        Assert.Equal(42, await definition.Invoker.InvokeAsync(InvokerHelpers.FunctionInstance, call.MethodId, new object?[] { 41 }, default));
    }

    [Fact]
    public async Task ReconfigureConvertsTheUserConfig()
    {
        var filterType = s_assembly.Value.GetType("Demo.Filter")!;
        var definition = Definition(filterType);
        Assert.Equal("Demo.Thresholds", definition.UserConfigType!.FullName);
        Assert.DoesNotContain(definition.Methods, m => m.Name == "ReconfigureAsync");
        var filter = Activator.CreateInstance(filterType)!;
        var call = definition.Methods.Single(m => m.IsCall);

        Assert.Equal(false, await definition.Invoker.InvokeAsync(filter, call.MethodId, new object?[] { 5.0 }, default));
        await definition.Reconfigure!(filter, JsonDocument.Parse("""{"Min": 0, "Max": 10}""").RootElement, default);
        Assert.Equal(true, await definition.Invoker.InvokeAsync(filter, call.MethodId, new object?[] { 5.0 }, default));
        await definition.Reconfigure!(filter, new Dictionary<string, double> { ["Min"] = 6, ["Max"] = 7 }, default);
        Assert.Equal(false, await definition.Invoker.InvokeAsync(filter, call.MethodId, new object?[] { 5.0 }, default));
    }

    [Fact]
    public async Task CreateInstanceBindsArgumentsAndInjectsContextAndServices()
    {
        var assembly = s_assembly.Value;
        var definition = Definition(assembly.GetType("Demo.Stamper")!);
        var services = (IServiceProvider)Activator.CreateInstance(assembly.GetType("Demo.Services")!)!;
        var context = CreateInternal<ReplicaContext>(new()
        {
            ["applicationName"] = "app", ["deploymentName"] = "Stamper", ["replicaId"] = "Stamper#1", ["version"] = "v1",
            ["stoppingToken"] = CancellationToken.None,
        });
        DeploymentActivation Activation(int index, object?[] arguments) => CreateInternal<DeploymentActivation>(new()
        {
            ["deploymentName"] = "Stamper", ["constructorIndex"] = index, ["arguments"] = arguments, ["context"] = context, ["services"] = services,
        });

        var instance = definition.CreateInstance(Activation(0, new object?[] { "p" }));
        var call = definition.Methods.Single(m => m.IsCall);
        Assert.Equal("p:Stamper#1:clock:nolog", await definition.Invoker.InvokeAsync(instance, call.MethodId, Array.Empty<object?>(), default));

        Assert.Throws<InvalidOperationException>(() => definition.CreateInstance(Activation(7, new object?[] { "p" })));
        Assert.Throws<ArgumentException>(() => definition.CreateInstance(Activation(0, new object?[] { 12 })));
    }

    private static (DeploymentDefinition Definition, object Instance) Greeter()
    {
        var type = s_assembly.Value.GetType("Demo.Greeter")!;
        return (Definition(type), Activator.CreateInstance(type, "Hello")!);
    }

    private static DeploymentDefinition Definition(Type holder) =>
        (DeploymentDefinition)holder.GetField("__ServeDefinition", BindingFlags.Static | BindingFlags.NonPublic)!.GetValue(null)!;

    // DeploymentActivation and ReplicaContext are created by the host; their constructors are internal. Filling the
    // parameters by name keeps this test honest about what it needs, and names the change if they move.
    private static T CreateInternal<T>(Dictionary<string, object?> byName)
    {
        var ctor = typeof(T).GetConstructors(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public).Single();
        var arguments = ctor.GetParameters().Select(p => byName.TryGetValue(p.Name!, out var v)
            ? v
            : throw new InvalidOperationException($"{typeof(T).Name}'s constructor now takes '{p.Name}'; update {nameof(BehaviourTests)}.")).ToArray();
        return (T)ctor.Invoke(arguments);
    }

    private static Assembly Compile()
    {
        var run = GeneratorHarness.Run(Source);
        Assert.Empty(run.Diagnostics);
        GeneratorHarness.AssertCompiles(run.Output);
        using var stream = new MemoryStream();
        var emitted = run.Output.Emit(stream);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        stream.Position = 0;
        // A context of its own, so the assembly's name cannot clash with others; Serve resolves from the default context.
        return new AssemblyLoadContext("Serve.Generators.Tests.Behaviour").LoadFromStream(stream);
    }
}
