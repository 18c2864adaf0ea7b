using Microsoft.CodeAnalysis;

namespace Serve.Generators.Tests;

/// <summary>
/// Layer 3: each SERVE0xx rule, triggered by a minimal program, asserting the id, the exact text at the reported
/// location and a message that says what to do. The rest of the program must still compile: a reported mistake
/// leaves no broken generated code behind.
/// </summary>
public sealed class DiagnosticTests
{
    private const string Usings = """
        using System;
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        """;

    [Fact]
    public void SERVE001_ClassNotPartial()
    {
        var d = Single("[Deployment] public class Greeter { public string Call() => \"hi\"; }", "SERVE001", "Greeter");
        Assert.Contains("'partial class Greeter'", d.GetMessage());
    }

    [Fact]
    public void SERVE002_ClassGeneric() =>
        Single("[Deployment] public partial class Greeter<T> { public string Call() => \"hi\"; }", "SERVE002", "Greeter");

    [Fact]
    public void SERVE003_ClassAbstract() =>
        Single("[Deployment] public abstract partial class Greeter { public string Call() => \"hi\"; }", "SERVE003", "Greeter");

    [Fact]
    public void SERVE004_ClassStatic()
    {
        var d = Single("[Deployment] public static partial class Greeter { public static string Call() => \"hi\"; }", "SERVE004", "Greeter");
        Assert.Contains("function deployments", d.GetMessage());
    }

    [Fact]
    public void SERVE005_ContainingTypeNotPartial() =>
        Single("public class Outer { [Deployment] public partial class Greeter { public string Call() => \"hi\"; } }", "SERVE005", "Outer");

    [Fact]
    public void SERVE006_NestedInGenericType() =>
        Single("public partial class Outer<T> { [Deployment] public partial class Greeter { public string Call() => \"hi\"; } }", "SERVE006", "Outer");

    [Fact]
    public void SERVE007_DeploymentNotAccessible()
    {
        var d = Single("public partial class Outer { [Deployment] private partial class Greeter { public string Call() => \"hi\"; } }", "SERVE007", "Greeter");
        Assert.Contains("is private", d.GetMessage());

        var f = Single("public static partial class Fns { [Deployment] private static int Square(int x) => x * x; }", "SERVE007", "Square");
        Assert.Contains("Make it internal or public", f.GetMessage());

        var local = Single("[Deployment] file partial class Greeter { public string Call() => \"hi\"; }", "SERVE007", "Greeter");
        Assert.Contains("is file-local", local.GetMessage());
    }

    [Fact]
    public void SERVE008_NoPublicConstructor() =>
        Single("[Deployment] public partial class Greeter { private Greeter() { } public string Call() => \"hi\"; }", "SERVE008", "Greeter");

    [Theory]
    [InlineData("public void Fill(ref int total) { }", "ref int total", "'ref'")]
    [InlineData("public bool TryGet(string key, out string value) { value = key; return true; }", "out string value", "return the value instead")]
    [InlineData("public int Sum(in int x) => x;", "in int x", "'in'")]
    [InlineData("public ref int Slot() => ref _slot; private int _slot;", "ref int", "returns by reference")]
    [InlineData("public Greeter() { } public Greeter(ref int seed) { }", "ref int seed", "constructor")]
    public void SERVE009_ByReference(string member, string text, string messagePart)
    {
        var d = Single("[Deployment] public partial class Greeter { " + member + " public string Call() => \"hi\"; }", "SERVE009", text);
        Assert.Contains(messagePart, d.GetMessage());
    }

    [Fact]
    public void SERVE009_Pointer()
    {
        var d = Single("[Deployment] public unsafe partial class Greeter { public int Read(int* p) => *p; public string Call() => \"hi\"; }", "SERVE009", "int* p", unsafeCode: true);
        Assert.Contains("pointer", d.GetMessage());
    }

    [Theory]
    [InlineData("public int Sum(ReadOnlySpan<int> values) => values.Length;", "ReadOnlySpan<int> values", "'int[]' or 'ReadOnlyMemory<int>'")]
    [InlineData("public int Count(ReadOnlySpan<char> text) => text.Length;", "ReadOnlySpan<char> text", "'string'")]
    [InlineData("public Span<byte> Buffer() => default;", "Span<byte>", "'byte[]' or 'Memory<byte>'")]
    [InlineData("public int Len(Token t) => 0; public ref struct Token { }", "Token t", "non-ref struct")]
    public void SERVE010_RefLikeType(string member, string text, string suggestion)
    {
        var d = Single("[Deployment] public partial class Greeter { " + member + " public string Call() => \"hi\"; }", "SERVE010", text);
        Assert.Contains(suggestion, d.GetMessage());
    }

    [Fact]
    public void SERVE011_DuplicateHandleMethod()
    {
        var run = Run("""
            [Deployment]
            public partial class Greeter
            {
                public string Shout(string s) => s;
                public Task<string> ShoutAsync(string s) => Task.FromResult(s);
                public string Call(int x, CancellationToken ct) => "";
                public string Call(int y) => "";
            }
            """);
        Assert.Equal(2, run.Diagnostics.Length);
        Assert.All(run.Diagnostics, d => Assert.Equal("SERVE011", d.Id));
        Assert.Equal("ShoutAsync", GeneratorHarness.TextAt(run.Input, run.Diagnostics[0]));
        Assert.Contains("'Shout(string)' and 'ShoutAsync(string)' of 'Greeter' would both become the handle method 'ShoutAsync(string)'", run.Diagnostics[0].GetMessage());
        Assert.Equal("Call", GeneratorHarness.TextAt(run.Input, run.Diagnostics[1]));
        Assert.Equal(12, run.Diagnostics[1].Location.GetLineSpan().StartLinePosition.Line);
        // The first of each pair stays on the handle.
        Assert.Contains("ShoutAsync(string s,", run.Source("Demo.Greeter.Serve.g.cs"));
    }

    [Fact]
    public void SERVE012_GenericMethod()
    {
        var run = Run("""
            [Deployment]
            public partial class Greeter
            {
                public T Echo<T>(T value) => value;
                public string Call() => "hi";
            }
            """);
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal("SERVE012", d.Id);
        Assert.Equal("Echo", GeneratorHarness.TextAt(run.Input, d));
        Assert.Contains("Method 'Greeter.Echo' is generic", d.GetMessage());
        Assert.DoesNotContain("EchoAsync", run.Source("Demo.Greeter.Serve.g.cs"));
        Assert.Contains("CallAsync", run.Source("Demo.Greeter.Serve.g.cs"));
    }

    [Fact]
    public void SERVE012_GenericFunction() =>
        Single("public static partial class Fns { [Deployment] public static T Id<T>(T x) => x; }", "SERVE012", "Id");

    [Fact]
    public void SERVE013_ReservedHandleMethodName()
    {
        var d = Single("[Deployment] public partial class Greeter { public object? Invoke(string methodName, object?[] arguments) => null; }", "SERVE013", "Invoke");
        Assert.Contains("DeploymentHandle.InvokeAsync", d.GetMessage());
    }

    [Fact]
    public void SERVE014_MethodIdCollision()
    {
        // FNV-1a 32 of "M15119()" and "M203802()" are equal (found by search; see MethodIdTests).
        var d = Single("[Deployment] public partial class Greeter { public int M15119() => 1; public int M203802() => 2; }", "SERVE014", "M203802");
        Assert.Contains("'M15119()' and 'M203802()'", d.GetMessage());
    }

    [Fact]
    public void SERVE015_DuplicateBind()
    {
        var run = Run("""
            [Deployment]
            public partial class Greeter
            {
                public Greeter(string greeting) { }
                public Greeter(string name, ReplicaContext context) { }
                public string Call() => "hi";
            }
            """);
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal("SERVE015", d.Id);
        Assert.Equal("Greeter", GeneratorHarness.TextAt(run.Input, d));
        Assert.Equal(10, d.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Contains("would both become 'Bind(string)'", d.GetMessage());
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void SERVE015_DuplicateBind_PrimaryConstructor()
    {
        var d = Single("""
            [Deployment]
            public partial class Greeter(string greeting)
            {
                public Greeter(string name, [FromServices] IServiceProvider services) : this(name) { }
                public string Call() => greeting;
            }
            """, "SERVE015", "Greeter");
        Assert.Contains("'Greeter(string)' and 'Greeter(string, IServiceProvider)'", d.GetMessage());
    }

    [Fact]
    public void SERVE016_FunctionNotInStaticPartialClass()
    {
        var d = Single("public partial class Fns { [Deployment] public static int Square(int x) => x * x; }", "SERVE016", "Fns");
        Assert.Contains("'static partial class'", d.GetMessage());
        Single("public static class Fns { [Deployment] public static int Square(int x) => x * x; }", "SERVE016", "Fns");
    }

    [Fact]
    public void SERVE017_FunctionNotStatic()
    {
        var run = Run("public partial class Fns { [Deployment] public int Square(int x) => x * x; }");
        var notStatic = Assert.Single(run.Diagnostics, d => d.Id == "SERVE017");
        Assert.Equal("Square", GeneratorHarness.TextAt(run.Input, notStatic));
        Assert.Contains("Make the method static", notStatic.GetMessage());
        // Its class is not a static partial class either; both mistakes are reported where they are.
        Assert.Equal("Fns", GeneratorHarness.TextAt(run.Input, Assert.Single(run.Diagnostics, d => d.Id == "SERVE016")));
    }

    [Theory]
    [InlineData("NumReplicas = -1", "Deployment 'Greeter': NumReplicas = -1 is out of range; use 0 or more replicas")]
    [InlineData("MaxOngoingRequests = 0", "Deployment 'Greeter': MaxOngoingRequests = 0 is out of range; use 1 or more")]
    [InlineData("MaxQueuedRequests = -2", "Deployment 'Greeter': MaxQueuedRequests = -2 is out of range; use -1 (unbounded)")]
    [InlineData("NumCpus = -0.5", "Deployment 'Greeter': NumCpus = -0.5 is out of range; use a finite number of 0 or more CPUs")]
    [InlineData("NumCpus = double.NaN", "Deployment 'Greeter': NumCpus = NaN is out of range")]
    [InlineData("NumGpus = -1", "Deployment 'Greeter': NumGpus = -1 is out of range")]
    [InlineData("NumGpus = double.NaN", "Deployment 'Greeter': NumGpus = NaN is out of range")]
    [InlineData("NumGpus = 1.5", "Deployment 'Greeter': NumGpus = 1.5 is out of range; above 1 use a whole number of GPUs, e.g. 2")]
    [InlineData("GracefulShutdownTimeoutSeconds = -3", "Deployment 'Greeter': GracefulShutdownTimeoutSeconds = -3 is out of range")]
    [InlineData("GracefulShutdownTimeoutSeconds = 5e6", "Deployment 'Greeter': GracefulShutdownTimeoutSeconds = 5000000 is out of range; use a number of seconds from 0 to 4294967 (49 days")]
    [InlineData("HealthCheckPeriodSeconds = 0", "Deployment 'Greeter': HealthCheckPeriodSeconds = 0 is out of range")]
    [InlineData("HealthCheckPeriodSeconds = 1e300", "Deployment 'Greeter': HealthCheckPeriodSeconds = 1E+300 is out of range; use a number of seconds above 0, at most 4294967")]
    [InlineData("HealthCheckTimeoutSeconds = -1", "Deployment 'Greeter': HealthCheckTimeoutSeconds = -1 is out of range")]
    [InlineData("RoutePrefix = \"api\"", "Deployment 'Greeter': RoutePrefix = \"api\" is out of range; start it with '/', e.g. \"/greeter\"")]
    [InlineData("Name = \" \"", "Deployment 'Greeter': Name = \" \" is out of range; use a non-empty name")]
    // The upper bounds are the runtime's (one OptionRules table for both).
    [InlineData("NumReplicas = 10001", "Deployment 'Greeter': NumReplicas = 10001 is out of range; use 0 or more replicas, at most 10000")]
    [InlineData("NumReplicas = int.MaxValue", "Deployment 'Greeter': NumReplicas = 2147483647 is out of range; use 0 or more replicas, at most 10000")]
    [InlineData("NumCpus = 10000.5", "Deployment 'Greeter': NumCpus = 10000.5 is out of range; use a finite number of 0 or more CPUs, at most 10000")]
    [InlineData("NumCpus = double.PositiveInfinity", "Deployment 'Greeter': NumCpus = Infinity is out of range; use a finite number of 0 or more CPUs, at most 10000")]
    [InlineData("NumGpus = 1001", "Deployment 'Greeter': NumGpus = 1001 is out of range; use a finite number of 0 or more GPUs, at most 1000")]
    [InlineData("NumGpus = 1e300", "Deployment 'Greeter': NumGpus = 1E+300 is out of range; use a finite number of 0 or more GPUs, at most 1000")]
    [InlineData("MaxReplicasPerNode = -1", "Deployment 'Greeter': MaxReplicasPerNode = -1 is out of range; use 0 (no cap, the default) or a positive cap")]
    [InlineData("NodeSelector = \"zone\"", "Deployment 'Greeter': NodeSelector = \"zone\" is out of range; write it as label=value pairs separated by commas, e.g. \"zone=a,gpu=h100\" ('zone' is not label=value)")]
    [InlineData("NodeSelector = \"zone=a,zone=b\"", "Deployment 'Greeter': NodeSelector = \"zone=a,zone=b\" is out of range; names label 'zone' twice")]
    public void SERVE018_OptionOutOfRange(string argument, string message)
    {
        var run = Run("[Deployment(Version = \"v1\", " + argument + ")] public partial class Greeter { public string Call() => \"hi\"; }");
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal("SERVE018", d.Id);
        Assert.Equal(argument, GeneratorHarness.TextAt(run.Input, d));
        Assert.StartsWith(message, d.GetMessage());
        // The deployment is still generated, with the attribute's other options and the runtime default for this one.
        Assert.Contains("DefaultOptions = new global::Serve.DeploymentOptions { Name = \"Greeter\", Version = \"v1\" }", run.Source("Demo.Greeter.Serve.g.cs"));
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void MaxReplicasPerNode_and_NodeSelector_become_the_deployments_default_options()
    {
        var run = Run("[Deployment(MaxReplicasPerNode = 2, NodeSelector = \" zone = a , gpu=h100 \")] public partial class Greeter { public string Call() => \"hi\"; }");
        Assert.Empty(run.Diagnostics);
        Assert.Contains("MaxReplicasPerNode = 2, NodeSelector = { [\"zone\"] = \"a\", [\"gpu\"] = \"h100\" }", run.Source("Demo.Greeter.Serve.g.cs"));
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void SERVE018_InRangeEdgesAreAccepted()
    {
        var run = Run("""
            [Deployment(NumReplicas = 0, MaxOngoingRequests = 1, MaxQueuedRequests = -1, NumCpus = 0, NumGpus = 0.5, GracefulShutdownTimeoutSeconds = 0, RoutePrefix = "/")]
            public partial class A { public void Call() { } }
            [Deployment(NumGpus = 1, MaxQueuedRequests = 0)] public partial class B { public void Call() { } }
            [Deployment(NumGpus = 4)] public partial class C { public void Call() { } }
            """);
        Assert.Empty(run.Diagnostics);
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void SERVE018_UpperEdgesAreAcceptedAsAtRuntime()
    {
        var run = Run("""
            [Deployment(NumReplicas = 10000, NumCpus = 10000, NumGpus = 1000)] public partial class A { public void Call() { } }
            """);
        Assert.Empty(run.Diagnostics);
        GeneratorHarness.AssertCompiles(run.Output);
        // The same edges at runtime: the generator and DeploymentOptions.Validate check one table.
        new DeploymentOptions { Name = "A", NumReplicas = DeploymentOptions.MaxNumReplicas, NumCpus = DeploymentOptions.MaxNumCpus, NumGpus = DeploymentOptions.MaxNumGpus }.Validate("A");
        Assert.Throws<ArgumentOutOfRangeException>(() => new DeploymentOptions { Name = "A", NumReplicas = DeploymentOptions.MaxNumReplicas + 1 }.Validate("A"));
    }

    [Fact]
    public void SERVE019_DuplicateHandleType()
    {
        var run = Run("""
            public partial class A { [Deployment] public partial class Worker { public void Call() { } } }
            public partial class B { [Deployment] public partial class Worker { public void Call() { } } }
            """);
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal("SERVE019", d.Id);
        Assert.Equal("Worker", GeneratorHarness.TextAt(run.Input, d));
        Assert.Equal(7, d.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Contains("'Demo.A.Worker' and 'Demo.B.Worker' both generate the handle type 'Demo.WorkerHandle'", d.GetMessage());
        // The first keeps the handle; the output still compiles.
        Assert.Contains(run.Sources, s => s.HintName == "Demo.A.Worker.Serve.g.cs");
        Assert.DoesNotContain(run.Sources, s => s.HintName == "Demo.B.Worker.Serve.g.cs");
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void SERVE019_OverloadedFunctionDeployments()
    {
        var run = Run("""
            public static partial class Fns
            {
                [Deployment] public static int Square(int x) => x * x;
                [Deployment] public static double Square(double x) => x * x;
            }
            """);
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal("SERVE019", d.Id);
        Assert.Equal("Square", GeneratorHarness.TextAt(run.Input, d));
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void InvalidDeploymentDoesNotStopOthers()
    {
        var run = Run("""
            [Deployment] public class Broken { public void Call() { } }
            [Deployment] public partial class Fine { public void Call() { } }
            """);
        Assert.Equal("SERVE001", Assert.Single(run.Diagnostics).Id);
        Assert.Contains("global::Demo.Fine.__ServeDefinition", run.Source("ServeManifest.g.cs"));
        Assert.DoesNotContain("Broken", run.Source("ServeManifest.g.cs"));
        GeneratorHarness.AssertCompiles(run.Output);
    }

    [Fact]
    public void RepeatedAttributeOnPartialPartsGeneratesOnce()
    {
        var run = Run("""
            [Deployment] public partial class Greeter { public string Call() => "hi"; }
            [Deployment] public partial class Greeter { public string Other() => "ho"; }
            """);
        Assert.True(run.Diagnostics.IsEmpty, string.Join("\n", run.Diagnostics));
        Assert.Single(run.Sources, s => s.HintName == "Demo.Greeter.Serve.g.cs");
        // The compiler reports the duplicate attribute itself.
        Assert.Contains(run.Output.GetDiagnostics(), d => d.Id == "CS0579");
    }

    [Fact]
    public void FunctionDeclaredTwiceDoesNotCrashTheGenerator()
    {
        var run = Run("""
            public static partial class Fns
            {
                [Deployment] public static int Square(int x) => x * x;
                [Deployment] public static int Square(int y) => y * y;
            }
            """);
        Assert.Equal("SERVE019", Assert.Single(run.Diagnostics).Id);
        Assert.Contains(run.Output.GetDiagnostics(), d => d.Id == "CS0111");
    }

    [Fact]
    public void SERVE099_InternalErrorInsteadOfACrash()
    {
        // No valid program reaches it; the emission wrapper is exercised directly.
        var (source, error) = DeploymentGenerator.TryEmit("Greeter", () => throw new InvalidOperationException("boom"));
        Assert.Null(source);
        var d = error!.ToDiagnostic();
        Assert.Equal("SERVE099", d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal("The Serve generator failed on 'Greeter': InvalidOperationException: boom. This is a bug in Serve.Generators; please report it with the declaration that triggers it.", d.GetMessage());
        Assert.Equal(("ok", (Serve.Generators.Model.DiagnosticInfo?)null), DeploymentGenerator.TryEmit("Greeter", () => "ok"));
    }

    [Fact]
    public void EveryRuleIsAnErrorInCategoryServeAndTrackedForRelease_exceptTheGraphBuilderWarning()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Serve.sln")))
            root = Path.GetDirectoryName(root)!;
        var unshipped = File.ReadAllText(Path.Combine(root, "src", "Serve.Generators", "AnalyzerReleases.Unshipped.md"));
        Assert.Equal(DiagnosticDescriptors.All.Count, DiagnosticDescriptors.All.Select(d => d.Id).Distinct().Count());
        foreach (var rule in DiagnosticDescriptors.All)
        {
            Assert.Matches("^SERVE0[0-9][0-9]$", rule.Id);
            Assert.Equal("Serve", rule.Category);
            // SERVE041 only leaves out a graph builder the user may not want; every other rule is an error.
            var severity = rule.Id == "SERVE041" ? DiagnosticSeverity.Warning : DiagnosticSeverity.Error;
            Assert.Equal(severity, rule.DefaultSeverity);
            Assert.Contains(rule.Id + " | Serve | " + severity + " |", unshipped);
        }
    }

    [Fact]
    public void SERVE020_RouteValueWithoutParameter()
    {
        var d = Single("""
            [Deployment] public partial class Api
            {
                [Microsoft.AspNetCore.Mvc.HttpGet("items/{id:int}")] public string Get(int key) => "";
            }
            """, "SERVE020", "Microsoft.AspNetCore.Mvc.HttpGet(\"items/{id:int}\")");
        Assert.Contains("'{id}'", d.GetMessage());
    }

    [Fact]
    public void SERVE050_MultiplexedShape()
    {
        var d = Single("""
            [Deployment] public partial class Models
            {
                [Multiplexed] public Task<string> LoadModelAsync(int id) => Task.FromResult("");
                public string Call() => "";
            }
            """, "SERVE050", "LoadModelAsync");
        Assert.Equal("[Multiplexed] method 'Models.LoadModelAsync' must be an instance method 'Task<TModel> Models.LoadModelAsync(string modelId)' or return ValueTask<TModel>, " +
                     "optionally with a trailing CancellationToken. Change its signature to that shape.", d.GetMessage());
        Single("""
            [Deployment] public partial class Models
            {
                [Multiplexed] public string LoadModel(string id) => id;
                public string Call() => "";
            }
            """, "SERVE050", "LoadModel");
    }

    [Fact]
    public void SERVE051_MultiplexedLimit()
    {
        var d = Single("""
            [Deployment] public partial class Models
            {
                [Multiplexed(MaxModelsPerReplica = 0)] public Task<string> LoadModelAsync(string id) => Task.FromResult(id);
                public string Call() => "";
            }
            """, "SERVE051", "LoadModelAsync");
        Assert.Equal("[Multiplexed] method 'Models.LoadModelAsync': MaxModelsPerReplica = 0 is out of range; use 1 or more (the default is 3).", d.GetMessage());
    }

    [Fact]
    public void SERVE052_MultiplexedTwice()
    {
        var d = Single("""
            [Deployment] public partial class Models
            {
                [Multiplexed] public Task<string> LoadAAsync(string id) => Task.FromResult(id);
                [Multiplexed] public Task<string> LoadBAsync(string id) => Task.FromResult(id);
                public string Call() => "";
            }
            """, "SERVE052", "LoadBAsync");
        Assert.Equal("Deployment class 'Models' already has the [Multiplexed] model loader 'LoadAAsync'; 'LoadBAsync' cannot be a second one. " +
                     "Load every model kind through one method, or split the deployment.", d.GetMessage());
    }

    [Theory]
    [InlineData("public int Predict(InputNode<int> input) => 0;", "InputNode<int> input", "'int'")]
    [InlineData("public int Predict(GraphNode<int, string> text) => 0;", "GraphNode<int, string> text", "'string'")]
    public void SERVE040_GraphNodeParameter(string member, string text, string valueType)
    {
        var d = Single("[Deployment] public partial class Model { " + member + " public string Call() => \"hi\"; }", "SERVE040", text);
        Assert.Contains("Declare the value type " + valueType, d.GetMessage());
        Assert.Contains("graph builder", d.GetMessage());
    }

    [Fact]
    public void SERVE040_GraphNodeResultAndConstructorParameter()
    {
        var result = Single("[Deployment] public partial class Model { public Task<GraphNode<int, int>> Plan(int x) => null!; }", "SERVE040", "Task<GraphNode<int, int>>");
        Assert.Contains("The result of method 'Model.Plan'", result.GetMessage());

        var ctor = Single("[Deployment] public partial class Model(InputNode<int> input) { public int Call() => 0; }", "SERVE040", "InputNode<int> input");
        Assert.Contains("constructor", ctor.GetMessage());
    }

    [Fact]
    public void SERVE041_GraphBuilderHiddenByApplicationMember()
    {
        var run = Run("[Deployment] public partial class Model { public int Arguments(int x) => x; public int Predict(int x) => x; }");
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal("SERVE041", d.Id);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Equal("Arguments", GeneratorHarness.TextAt(run.Input, d));
        Assert.Contains("'Application<ModelHandle>.Arguments'", d.GetMessage());
        GeneratorHarness.AssertCompiles(run.Output);
        // The handle method is still generated; only the graph builder is left out.
        var generated = string.Join("\n", run.Output.SyntaxTrees.Select(t => t.ToString()));
        Assert.Contains("ArgumentsAsync(int x", generated);
        Assert.Contains(" Predict<TInput>(", generated);
        Assert.DoesNotContain(" Arguments<TInput>(", generated);
    }

    [Fact]
    public void Graph_builders_type_check_the_graph_at_compile_time()
    {
        var run = Run("""
            public static partial class Steps { [Deployment] public static int Preprocess(int inp) => inp + 1; }
            [Deployment] public partial class Model { public int Predict(int inp) => inp; public string Name(string s) => s; public int Pair(int a, int b) => a + b; }
            public static class Graphs
            {
                public static void Build()
                {
                    var input = new InputNode<int>();
                    var model = Model.Bind();
                    var ok = model.Predict(PreprocessDeployment.Bind(input));
                    var wrongValue = model.Name(ok);                        // int node where a string is expected
                    var wrongInput = model.Predict(new InputNode<string>().Select(s => s.Length)).ToString() + ok;
                    var other = Model.Bind().Predict(model.Predict(new InputNode<long>().Select(l => (int)l)));
                    var mixed = model.Pair(ok, other);                       // two graphs with different inputs
                    Application<DagDriverHandle<int, string>> wrongOutput = DagDriver.Bind(ok);
                }
            }
            """);
        Assert.Empty(run.Diagnostics);
        var errors = run.Output.GetDiagnostics().Where(e => e.Severity == DiagnosticSeverity.Error).ToList();
        // model.Name(ok): GraphNode<int, int> is not a GraphNode<int, string>; Pair mixes a graph of int inputs with one
        // of long inputs; DagDriver.Bind(ok) is not a driver of strings. Everything else (Select on another input) compiles.
        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.Id == "CS0411" && e.GetMessage().Contains("Pair<TInput>"));
        Assert.Contains(errors, e => e.GetMessage().Contains("GraphNode<int, int>") && GeneratorHarness.TextAt(run.Output, e) == "ok");
        Assert.Contains(errors, e => e.GetMessage().Contains("DagDriverHandle<int, int>"));
    }

    private static GeneratorRun Run(string body, bool unsafeCode = false)
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { Usings + body });
        if (unsafeCode)
            compilation = compilation.WithOptions(compilation.Options.WithAllowUnsafe(true));
        return GeneratorHarness.Run(compilation);
    }

    /// <summary>Asserts the program gets exactly one diagnostic, with this id, at this text; and that the output compiles.</summary>
    private static Diagnostic Single(string body, string id, string text, bool unsafeCode = false)
    {
        var run = Run(body, unsafeCode);
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(text, GeneratorHarness.TextAt(run.Input, d));
        GeneratorHarness.AssertCompiles(run.Output);
        return d;
    }
}
