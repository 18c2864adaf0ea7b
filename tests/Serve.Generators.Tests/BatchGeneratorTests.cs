using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace Serve.Generators.Tests;

/// <summary>
/// <c>[Batch]</c>: the generated source (snapshot, compiled against the real runtime) and each SERVE030–SERVE034 rule
/// at its syntax, with a message that says what to write instead.
/// </summary>
public sealed class BatchGeneratorTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        """;

    [Fact]
    public void Batching()
    {
        var run = GeneratorHarness.Run(Usings + """
            public sealed record Config(int BatchSize);

            [Deployment(MaxOngoingRequests = 32)]
            public partial class Model : IReconfigurable<Config>
            {
                [Batch(MaxBatchSize = 32, BatchWaitTimeoutMs = 5, MaxConcurrentBatches = 2)]
                public Task<IReadOnlyList<float>> Predict(IReadOnlyList<float[]> inputs, CancellationToken cancellationToken) =>
                    Task.FromResult<IReadOnlyList<float>>(new float[inputs.Count]);

                [Batch]
                public IReadOnlyList<string?> Label(IReadOnlyList<int> ids) => new string?[ids.Count];

                [Batch(MaxBatchSize = 4)]
                public ValueTask<IReadOnlyList<int>> Count(IReadOnlyList<string> texts) => new(new int[texts.Count]);

                [Batch(MaxBatchSize = 8)]
                public async IAsyncEnumerable<IReadOnlyList<string>> Generate(IReadOnlyList<string> prompts, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
                {
                    await Task.Yield();
                    yield return prompts;
                }

                public string Plain(int x) => x.ToString();

                public ValueTask ReconfigureAsync(Config config, CancellationToken cancellationToken)
                {
                    PredictBatch.MaxBatchSize = config.BatchSize;
                    return default;
                }
            }
            """);
        Assert.True(run.Diagnostics.IsEmpty, "Unexpected generator diagnostics:\n" + string.Join("\n", run.Diagnostics));
        GeneratorHarness.AssertCompiles(run.Output);
        Snapshot.Verify(run.Sources);
    }

    [Fact]
    public void SERVE030_BatchParameters()
    {
        var d = Single("""
            [Deployment] public partial class M
            {
                [Batch] public IReadOnlyList<int> Predict(int x) => new[] { x };
            }
            """, "SERVE030", "(int x)");
        Assert.Contains("'Predict(IReadOnlyList<int> inputs, CancellationToken cancellationToken)'", d.GetMessage());

        var two = Single("""
            [Deployment] public partial class M
            {
                [Batch] public IReadOnlyList<int> Predict(IReadOnlyList<int> a, IReadOnlyList<int> b) => a;
            }
            """, "SERVE030", "(IReadOnlyList<int> a, IReadOnlyList<int> b)");
        Assert.Contains("exactly one IReadOnlyList<T>", two.GetMessage());
    }

    [Fact]
    public void SERVE031_BatchResult()
    {
        var d = Single("""
            [Deployment] public partial class M
            {
                [Batch] public Task<int> Predict(IReadOnlyList<int> xs) => Task.FromResult(0);
            }
            """, "SERVE031", "Task<int>");
        Assert.Contains("Return Task<IReadOnlyList<int>>", d.GetMessage());

        var v = Single("""
            [Deployment] public partial class M
            {
                [Batch] public void Predict(IReadOnlyList<int> xs) { }
            }
            """, "SERVE031", "void");
        Assert.Contains("one result per input", v.GetMessage());

        var stream = Single("""
            [Deployment] public partial class M
            {
                [Batch] public async IAsyncEnumerable<int> Predict(IReadOnlyList<int> xs) { await Task.Yield(); yield return 1; }
            }
            """, "SERVE031", "IAsyncEnumerable<int>");
        Assert.Contains("Return IAsyncEnumerable<IReadOnlyList<int>>, one item per input at every step", stream.GetMessage());
    }

    [Fact]
    public void SERVE032_BatchOptionOutOfRange()
    {
        var d = Single("""
            [Deployment] public partial class M
            {
                [Batch(MaxBatchSize = 0)] public IReadOnlyList<int> Predict(IReadOnlyList<int> xs) => xs;
            }
            """, "SERVE032", "MaxBatchSize = 0");
        Assert.Contains("'M.Predict': MaxBatchSize = 0 is out of range; use 1 or more", d.GetMessage());

        Single("""
            [Deployment] public partial class M
            {
                [Batch(BatchWaitTimeoutMs = -1)] public IReadOnlyList<int> Predict(IReadOnlyList<int> xs) => xs;
            }
            """, "SERVE032", "BatchWaitTimeoutMs = -1");
        Single("""
            [Deployment] public partial class M
            {
                [Batch(MaxConcurrentBatches = 0)] public IReadOnlyList<int> Predict(IReadOnlyList<int> xs) => xs;
            }
            """, "SERVE032", "MaxConcurrentBatches = 0");
    }

    [Fact]
    public void SERVE033_BatchNotHandleMethod()
    {
        var d = Single("""
            [Deployment] public partial class M
            {
                [Batch] private IReadOnlyList<int> Predict(IReadOnlyList<int> xs) => xs;
                public int Call() => 1;
            }
            """, "SERVE033", "Batch");
        Assert.Contains("it is not public", d.GetMessage());

        var f = Single("""
            public static partial class Fns
            {
                [Deployment, Batch] public static IReadOnlyList<int> Square(IReadOnlyList<int> xs) => xs;
            }
            """, "SERVE033", "Batch");
        Assert.Contains("function deployment", f.GetMessage());
    }

    [Fact]
    public void SERVE034_BatchPropertyClash()
    {
        var d = Single("""
            [Deployment] public partial class M
            {
                [Batch] public IReadOnlyList<int> Predict(IReadOnlyList<int> xs) => xs;
                private int PredictBatch = 0;
                public int Call() => PredictBatch;
            }
            """, "SERVE034", "Predict");
        Assert.Contains("'PredictBatch'", d.GetMessage());
    }

    private static Diagnostic Single(string body, string id, string text)
    {
        var run = GeneratorHarness.Run(GeneratorHarness.CreateCompilation(new[] { Usings + body }));
        var d = Assert.Single(run.Diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(text, GeneratorHarness.TextAt(run.Input, d));
        GeneratorHarness.AssertCompiles(run.Output);
        return d;
    }
}
