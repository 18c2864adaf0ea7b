using Microsoft.CodeAnalysis;
using Serve.Generators.Helpers;

namespace Serve.Generators.Tests;

/// <summary>The parser's types are looked up once per compilation and matched by symbol, not by name.</summary>
public sealed class KnownTypeSymbolsTests
{
    [Fact]
    public void LooksTheTypesUpOncePerCompilation()
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { "namespace Demo; public class Empty { }" });

        var known = KnownTypeSymbols.For(compilation);

        Assert.Same(known, KnownTypeSymbols.For(compilation));
        Assert.Equal("Serve.ReplicaContext", known.ReplicaContext?.ToDisplayString());
        Assert.Equal("Serve.IReconfigurable<TConfig>", known.IReconfigurable?.ToDisplayString());
        Assert.Equal("System.Threading.Tasks.ValueTask<TResult>", known.ValueTaskOfT?.ToDisplayString());
        Assert.Equal("Microsoft.AspNetCore.Mvc.HttpGetAttribute", known.HttpGetAttribute?.ToDisplayString());
        Assert.NotSame(known, KnownTypeSymbols.For(compilation.AddSyntaxTrees(Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText("class Other { }"))));
    }

    [Fact]
    public void ConstructedTypesMatchTheirDefinition()
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { "namespace Demo; public class Empty { }" });
        var known = KnownTypeSymbols.For(compilation);
        var taskOfInt = known.TaskOfT!.Construct(compilation.GetSpecialType(SpecialType.System_Int32));

        Assert.True(KnownTypeSymbols.Is(taskOfInt, known.TaskOfT));
        Assert.False(KnownTypeSymbols.Is(taskOfInt, known.Task));
        Assert.False(KnownTypeSymbols.Is(taskOfInt, null));
    }

    [Fact]
    public void ALookAlikeInAnotherNamespaceIsNotServesBatchAttribute()
    {
        var run = GeneratorHarness.Run("""
            using System.Collections.Generic;
            using Serve;

            namespace Other
            {
                [System.AttributeUsage(System.AttributeTargets.Method)]
                public sealed class BatchAttribute : System.Attribute { }
            }

            namespace Demo
            {
                [Deployment]
                public partial class Model
                {
                    [Other.Batch]
                    public IReadOnlyList<int> Lengths(IReadOnlyList<string> texts) => new int[texts.Count];
                }
            }
            """);

        GeneratorHarness.AssertCompiles(run.Output);
        var source = run.Sources.Single(s => s.HintName == "Demo.Model.Serve.g.cs").SourceText.ToString();
        Assert.DoesNotContain("BatchQueue", source);
        Assert.Contains("LengthsAsync(global::System.Collections.Generic.IReadOnlyList<string> texts", source);
    }
}
