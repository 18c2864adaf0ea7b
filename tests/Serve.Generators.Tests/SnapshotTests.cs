using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace Serve.Generators.Tests;

/// <summary>
/// Layer 1: the generated source, compared with checked-in snapshots. Every test also compiles the output with the
/// input against the real Serve runtime and asserts no errors and no generator diagnostics.
/// </summary>
public sealed class SnapshotTests
{
    [Fact]
    public void Greeter() => Verify("""
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        [Deployment(NumReplicas = 2, MaxOngoingRequests = 8)]
        public partial class Greeter(string msg)
        {
            public string Call() => msg;
            public Task<string> Shout(string suffix) => Task.FromResult(msg.ToUpperInvariant() + suffix);
        }
        """);

    [Fact]
    public void DeploymentGraph() => Verify("""
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        public static partial class Steps
        {
            [Deployment]
            public static int Preprocess(int inp) => inp + 1;

            [Deployment]
            public static string Label(int value, string unit, CancellationToken cancellationToken) => value + unit;
        }

        [Deployment]
        public partial class Model(int increment)
        {
            public int Predict(int inp) => inp + increment;
            public Task<string?> DescribeAsync(int deployment, string? TInput) => Task.FromResult(TInput);
            public void Forget(int x) { }
            public int Zero() => 0;
        }

        public static class Graphs
        {
            public static Application<DagDriverHandle<int, string?>> Build()
            {
                var input = new InputNode<int>();
                var model = Model.Bind(increment: 2);
                var predicted = model.Predict(PreprocessDeployment.Bind(input));
                return DagDriver.Bind(model.DescribeAsync(predicted, LabelDeployment.Bind(predicted, "kg")));
            }
        }
        """);

    [Fact]
    public void HttpEndpoints() => Verify("""
        using Serve;

        namespace Microsoft.AspNetCore.Mvc
        {
            // Look-alikes of ASP.NET Core's attributes: the generator matches them by metadata name.
            [System.AttributeUsage(System.AttributeTargets.Method)] public sealed class HttpGetAttribute(string template = "") : System.Attribute { }
            [System.AttributeUsage(System.AttributeTargets.Method)] public sealed class HttpPostAttribute(string template = "") : System.Attribute { }
            [System.AttributeUsage(System.AttributeTargets.Parameter)] public sealed class FromRouteAttribute : System.Attribute { public string? Name { get; set; } }
            [System.AttributeUsage(System.AttributeTargets.Parameter)] public sealed class FromQueryAttribute : System.Attribute { public string? Name { get; set; } }
            [System.AttributeUsage(System.AttributeTargets.Parameter)] public sealed class FromBodyAttribute : System.Attribute { }
            [System.AttributeUsage(System.AttributeTargets.Parameter)] public sealed class FromHeaderAttribute : System.Attribute { public string? Name { get; set; } }
        }

        namespace Demo
        {
            using Microsoft.AspNetCore.Mvc;

            public sealed record Item(int Id, string Name);

            [Deployment]
            public partial class Api
            {
                [HttpGet("hi/{name}")]
                public string Hi([FromRoute] string name, [FromQuery(Name = "n")] int times = 1) => name;

                [HttpPost("items")]
                public Item Add([FromBody] Item item, [FromHeader(Name = "x-user")] string? user, string? tag = null) => item;

                [HttpGet]
                public string Root() => "root";

                public string NotAnEndpoint() => "";
            }
        }
        """);

    [Fact]
    public void ResultShapes() => Verify("""
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        [Deployment]
        public partial class Shapes
        {
            public int Value(int x) => x;
            public Task<string> TaskOfT(string s) => Task.FromResult(s);
            public ValueTask<long> ValueTaskOfT(long n) => new(n);
            public void Void(int x) { }
            public Task Done() => Task.CompletedTask;
            public ValueTask ValueTaskAsync() => default;
            public async IAsyncEnumerable<int> Stream(int count)
            {
                for (var i = 0; i < count; i++)
                {
                    await Task.Yield();
                    yield return i;
                }
            }
        }
        """);

    [Fact]
    public void CancellationTokenParameter() => Verify("""
        using System.Collections.Generic;
        using System.Runtime.CompilerServices;
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        [Deployment]
        public partial class Model
        {
            public Task<float[]> PredictAsync(float[] input, CancellationToken cancellationToken) => Task.FromResult(input);
            public Task WarmUp(CancellationToken token = default) => Task.Delay(0, token);
            public async IAsyncEnumerable<string> Generate(string prompt, [EnumeratorCancellation] CancellationToken ct = default)
            {
                await Task.Yield();
                yield return prompt;
            }
            // A user parameter named like the handle's token: the handle's token is renamed.
            public int Echo(int cancellationToken) => cancellationToken;
        }
        """);

    [Fact]
    public void Composition() => Verify("""
        using System.Threading.Tasks;
        using Serve;

        namespace Demo
        {
            [Deployment]
            public partial class ModelA
            {
                public int Call(int request) => request + 1;
            }

            [Deployment]
            public partial class ModelB
            {
                public Task<int> CallAsync(int request) => Task.FromResult(request * 2);
            }

            [Deployment]
            public partial class Driver(ModelAHandle a, ModelBHandle b)
            {
                public async Task<int> CallAsync(int request) => await a.CallAsync(request) + await b.CallAsync(request);
            }

            public static class App
            {
                public static Application<DriverHandle> Build() => Driver.Bind(ModelA.Bind(), ModelB.Bind());
            }
        }
        """);

    [Fact]
    public void CompositionAcrossNamespaces() => Verify("""
        using System.Threading.Tasks;
        using Serve;
        using Lib.Vision;

        namespace Lib.Vision
        {
            [Deployment] public partial class Detector { public int Call(int image) => image; }
        }

        namespace Lib.Text
        {
            [Deployment] public partial class Detector { public string Call(string text) => text; }
            public static partial class Functions { [Deployment] public static string Tokenize(string s) => s; }
        }

        namespace Lib.Text.Apps
        {
            // DetectorHandle: the innermost enclosing namespace wins (Lib.Text), as in C# lookup, over the using.
            // Lib.Vision.DetectorHandle: qualified. TokenizeHandle?: a function's handle, nullable annotation dropped.
            [Deployment]
            public partial class Pipeline(DetectorHandle text, Lib.Vision.DetectorHandle vision, TokenizeHandle? tokenize)
            {
                public async Task<string> CallAsync(string s) => await text.CallAsync(s) + await vision.CallAsync(1);
            }

            public static class Use
            {
                public static Application<PipelineHandle> App() =>
                    Pipeline.Bind(Lib.Text.Detector.Bind(), Lib.Vision.Detector.Bind(), TokenizeDeployment.Bind());
            }
        }
        """);

    [Fact]
    public void InjectedParameters() => Verify("""
        using System;
        using Serve;

        namespace Other
        {
            [AttributeUsage(AttributeTargets.Parameter)]
            public sealed class FromServicesAttribute : Attribute { }
        }

        namespace Demo
        {
            public interface IClock { DateTime Now { get; } }
            public interface ILog { void Write(string s); }

            [Deployment]
            public partial class Stamper(string prefix, ReplicaContext context, [FromServices] IClock clock, [Other.FromServices] ILog? log)
            {
                public string Call() => prefix + context.ReplicaId + clock.Now + (log is null ? "" : "log");
            }
        }
        """);

    [Fact]
    public void Reconfigurable() => Verify("""
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        public sealed record Thresholds(double Min, double Max);

        [Deployment]
        public partial class Filter : IReconfigurable<Thresholds>, System.IAsyncDisposable
        {
            private Thresholds _t = new(0, 1);
            public ValueTask ReconfigureAsync(Thresholds config, CancellationToken cancellationToken) { _t = config; return default; }
            public bool Call(double x) => x >= _t.Min && x <= _t.Max;
            public Task<bool> CheckHealthAsync(CancellationToken cancellationToken) => Task.FromResult(true);
            public ValueTask DisposeAsync() => default;
            public override string ToString() => "Filter";
            public static int Helper() => 0;
            public int Count { get; set; }
        }
        """);

    [Fact]
    public void MultipleConstructors() => Verify("""
        using Serve;

        namespace Demo;

        [Deployment]
        public partial class Translator
        {
            private readonly string _from, _to;
            public Translator() : this("en", "fr") { }
            private Translator(int ignored) : this() { }
            public Translator(string from, string to) { _from = from; _to = to; }
            internal Translator(string both) : this(both, both) { }
            public Translator(string from, string to, bool verbose, ReplicaContext context) : this(from + "/" + context.ReplicaId, to) { }
            public Translator(string to, int retries = 3, string? note = null) : this("en", to) { }
            public string Call(string text) => _from + ">" + _to + ":" + text;
        }
        """);

    [Fact]
    public void InternalClass() => Verify("""
        using Serve;

        namespace Demo;

        internal sealed record Secret(string Value);

        [Deployment]
        internal partial class Vault
        {
            public Secret Call(string key) => new(key);
        }
        """);

    [Fact]
    public void NestedClass() => Verify("""
        using System.Threading.Tasks;
        using Serve;

        namespace Demo.Nested;

        public static partial class Models
        {
            public partial record Zoo
            {
                [Deployment(Name = "zoo-keeper")]
                public partial class Keeper
                {
                    public Task Feed(string animal) => Task.CompletedTask;
                }
            }
        }

        public static class Use
        {
            public static Application<KeeperHandle> App() => Models.Zoo.Keeper.Bind();
        }
        """);

    [Fact]
    public void FunctionDeployment() => Verify("""
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        public static partial class Preprocessing
        {
            [Deployment]
            public static int Preprocess(int x) => x + 1;

            [Deployment(NumReplicas = 3)]
            internal static async Task<string> Normalize(string text, System.Threading.CancellationToken ct)
            {
                await Task.Yield();
                return text.Trim();
            }
        }

        public static class Use
        {
            public static Application<PreprocessHandle> App() => PreprocessDeployment.Bind();
        }
        """);

    [Fact]
    public void NullableParameters() => Verify("""
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        [Deployment]
        public partial class Lookup(string? fallback, Dictionary<string, string?> table)
        {
            public string? Find(string? key) => key is null ? fallback : table.GetValueOrDefault(key) ?? fallback;
            public Task<List<string?>> Keys(int? limit) => Task.FromResult(new List<string?>());
            public ValueTask<(int Count, string? Last)> Stats((string? Name, int Age) filter) => new((0, null));
        }
        """);

    [Fact]
    public void Multiplexed() => Verify("""
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        public sealed class Model(string id) { public string Id => id; }

        [Deployment]
        public sealed partial class Multi
        {
            [Multiplexed(MaxModelsPerReplica = 2)]
            public Task<Model> LoadModelAsync(string modelId, CancellationToken cancellationToken) => Task.FromResult(new Model(modelId));

            public async Task<string> Call(string input) => (await GetModelAsync()).Id + ":" + input;
        }
        """);

    [Fact]
    public void AttributeOptions() => Verify("""
        using Serve;

        namespace Demo;

        [Deployment(Name = "llm-\"quoted\"", NumReplicas = 0, MaxOngoingRequests = 32, MaxQueuedRequests = -1, RoutePrefix = "/llm",
                    Version = "v2", NumCpus = 2, NumGpus = 0.25, GracefulShutdownTimeoutSeconds = 1.5, HealthCheckPeriodSeconds = 5, HealthCheckTimeoutSeconds = 2)]
        public partial class Llm
        {
            public string Call(string prompt) => prompt;
        }

        [Deployment(NumGpus = 2, MaxQueuedRequests = 0, NumCpus = 1e-3, GracefulShutdownTimeoutSeconds = 30)]
        public partial class Trainer
        {
            public void Call() { }
        }
        """);

    [Fact]
    public void DefaultValuesAndKeywords() => Verify("""
        using System;
        using Serve;

        namespace Demo;

        public enum Mode { Fast = 1, Slow = -2 }

        [Deployment]
        public partial class Tuner(string @class = "a\"b", Mode mode = Mode.Slow, double scale = 0.5, float f = 1.25f, decimal m = 2.5m,
                                   long big = long.MinValue, char c = '\n', bool on = true, Mode? maybe = null, object? o = null, DateTime when = default)
        {
            public string @event(string @params, int count = -1, Mode mode = Mode.Fast, params int[] rest) => @class + @params;
            public string Call(uint u = 7, ulong ul = 8) => "";
        }
        """);

    [Fact]
    public void GlobalNamespaceRecord() => Verify("""
        using Serve;

        [Deployment]
        public partial record Echo(string Prefix)
        {
            public string Call(string text) => Prefix + text;
        }
        """);

    [Fact]
    public void HandleFromReferencedAssembly()
    {
        // ModelA is compiled (with its generated code) into a separate assembly, so the second compilation sees
        // ModelAHandle as a real type deriving from DeploymentHandle rather than as an error type.
        var library = GeneratorHarness.Run("""
            using Serve;
            namespace Lib;
            [Deployment]
            public partial class ModelA
            {
                public int Call(int x) => x;
            }
            """);
        GeneratorHarness.AssertCompiles(library.Output);
        var reference = library.Output.ToMetadataReference();

        var run = GeneratorHarness.Run(GeneratorHarness.CreateCompilation(new[]
        {
            """
            using System.Threading.Tasks;
            using Serve;
            using Lib;
            namespace App;
            [Deployment]
            public partial class Front(ModelAHandle model, DeploymentHandle any)
            {
                public async Task<int> CallAsync(int x) => await model.CallAsync(x);
            }
            public static class Use
            {
                public static Application<FrontHandle> App() => Front.Bind(ModelA.Bind(), ModelA.Bind());
            }
            """,
        }, new[] { reference }, "App"));
        Assert.Empty(run.Diagnostics);
        GeneratorHarness.AssertCompiles(run.Output);
        Snapshot.Verify(run.Sources);
    }

    private static void Verify(string source, [CallerMemberName] string testName = "")
    {
        var run = GeneratorHarness.Run(source);
        Assert.True(run.Diagnostics.IsEmpty, "Unexpected generator diagnostics:\n" + string.Join("\n", run.Diagnostics));
        GeneratorHarness.AssertCompiles(run.Output);
        Snapshot.Verify(run.Sources, testName);
    }
}
