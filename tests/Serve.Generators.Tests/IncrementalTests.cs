using System.Collections;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators.Tests;

/// <summary>
/// Layer 2: the pipeline caches. The driver runs twice; after an edit that does not change any deployment, every
/// tracked step must be Cached or Unchanged and no file may be regenerated.
/// </summary>
public sealed class IncrementalTests
{
    private static readonly string[] s_steps =
    {
        TrackingNames.Parse, TrackingNames.Diagnostics, TrackingNames.Models, TrackingNames.HandleNames,
        TrackingNames.Resolved, TrackingNames.Manifest, TrackingNames.HandleDeclarations,
    };

    private const string Deployments = """
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using Serve;

        namespace Demo;

        [Deployment(NumReplicas = 2)]
        public partial class ModelA(string name)
        {
            public string Call() => name;

            [Batch(MaxBatchSize = 8)]
            public IReadOnlyList<int> Lengths(IReadOnlyList<string> texts) => new int[texts.Count];
        }

        [Deployment]
        public partial class Driver(ModelAHandle a)
        {
            public async Task<string> CallAsync() => await a.CallAsync();
        }

        public static partial class Fns
        {
            [Deployment] public static int Square(int x) => x * x;
        }

        [Deployment] public class Broken { }
        """;

    [Fact]
    public void AddingAnUnrelatedFileKeepsEverythingCached()
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { Deployments });
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
            "namespace Other; public class Unrelated { public int X => 1; }", GeneratorHarness.ParseOptions, "Unrelated.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertAllStepsCachedOrUnchanged(result);
        AssertOutputsCached(result);
    }

    [Fact]
    public void EditingAMethodBodyKeepsOutputsCached()
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { Deployments });
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var result = driver.RunGenerators(Replace(compilation, "=> x * x;", "=> x + x;")).GetRunResult().Results.Single();

        AssertAllStepsCachedOrUnchanged(result);
        AssertOutputsCached(result);
    }

    [Fact]
    public void EditingAnHttpEndpointBodyKeepsOutputsCached()
    {
        // The HTTP route is an equatable model (verb, template, bindings): an equal parse keeps everything cached.
        var compilation = GeneratorHarness.CreateCompilation(new[] { """
            using Microsoft.AspNetCore.Mvc;
            using Serve;

            namespace Demo;

            [Deployment]
            public partial class Api
            {
                [HttpGet("items/{id}")]
                public string Get(int id, [FromQuery(Name = "q")] string? query = null, [FromHeader(Name = "x-user")] string? user = null) => "a";
            }
            """ });
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var result = driver.RunGenerators(Replace(compilation, "=> \"a\";", "=> \"b\";")).GetRunResult().Results.Single();

        AssertAllStepsCachedOrUnchanged(result);
        AssertOutputsCached(result);
        Assert.Contains("HttpParameterSource.Header, Name = \"x-user\"", result.GeneratedSources.Single(s => s.HintName == "Demo.Api.Serve.g.cs").SourceText.ToString());
    }

    [Fact]
    public void MovingADeploymentOnlyReparsesIt()
    {
        // Lines inserted above every deployment move their locations: the parse results change (they carry the
        // locations diagnostics need), but the models that produce source do not.
        var compilation = GeneratorHarness.CreateCompilation(new[] { Deployments });
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var result = driver.RunGenerators(Replace(compilation, "namespace Demo;", "namespace Demo;\n\n// a comment\n")).GetRunResult().Results.Single();

        foreach (var step in new[] { TrackingNames.Models, TrackingNames.HandleNames, TrackingNames.Resolved, TrackingNames.Manifest })
            AssertStepCachedOrUnchanged(result, step);
        // Source outputs (a deployment's file, the manifest) stay cached; only the outputs that report diagnostics
        // (whose locations moved) run again.
        var sourceOutputs = result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs)
            .Where(o => o.Value is ITuple { Length: 2 } t && t[0] is IEnumerable sources && sources.Cast<object>().Any())
            .ToList();
        Assert.Equal(4, sourceOutputs.Count); // ModelA, Driver, Square and the manifest
        Assert.All(sourceOutputs, o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void ChangingADeploymentRegeneratesOnlyItsFile()
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { Deployments });
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var run = driver.RunGenerators(Replace(compilation, "public string Call() => name;", "public string Call() => name;\n    public int Count() => 1;"));
        var result = run.GetRunResult().Results.Single();

        var resolved = result.TrackedSteps[TrackingNames.Resolved].SelectMany(s => s.Outputs).ToList();
        Assert.Single(resolved, o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Equal(2, resolved.Count(o => o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged));
        Assert.Contains("CountAsync", result.GeneratedSources.Single(s => s.HintName == "Demo.ModelA.Serve.g.cs").SourceText.ToString());
    }

    [Fact]
    public void ModelsHoldNoSymbolsSyntaxOrLocations()
    {
        var compilation = GeneratorHarness.CreateCompilation(new[] { Deployments });
        var result = GeneratorHarness.CreateDriver().RunGenerators(compilation).GetRunResult().Results.Single();

        var checkedValues = 0;
        foreach (var step in s_steps)
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), $"Step '{step}' was not tracked.");
            foreach (var output in result.TrackedSteps[step].SelectMany(s => s.Outputs))
            {
                AssertCacheable(output.Value, step, new HashSet<object>(ReferenceEqualityComparer.Instance));
                checkedValues++;
            }
        }
        Assert.True(checkedValues > 0);
    }

    private static void AssertCacheable(object? value, string path, HashSet<object> seen)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum)
            return;
        Assert.False(value is ISymbol or SyntaxNode or SemanticModel or Compilation or Location or SyntaxTree,
            $"{path} holds a {value.GetType().Name}, which keeps the compilation alive and defeats caching.");
        if (!value.GetType().IsValueType && !seen.Add(value))
            return;
        if (value is IEnumerable items)
        {
            var i = 0;
            foreach (var item in items)
                AssertCacheable(item, $"{path}[{i++}]", seen);
            return;
        }
        var type = value.GetType();
        if (type.Namespace?.StartsWith("Serve.Generators", StringComparison.Ordinal) != true && !type.Name.StartsWith("ValueTuple", StringComparison.Ordinal))
            return;
        foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            AssertCacheable(field.GetValue(value), $"{path}.{field.Name}", seen);
    }

    private static Compilation Replace(Compilation compilation, string oldText, string newText)
    {
        var tree = compilation.SyntaxTrees.Single();
        var text = tree.GetText().ToString();
        Assert.Contains(oldText, text);
        return compilation.ReplaceSyntaxTree(tree, tree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(text.Replace(oldText, newText))));
    }

    private static void AssertAllStepsCachedOrUnchanged(GeneratorRunResult result)
    {
        foreach (var step in s_steps)
            AssertStepCachedOrUnchanged(result, step);
    }

    private static void AssertStepCachedOrUnchanged(GeneratorRunResult result, string step)
    {
        Assert.True(result.TrackedSteps.TryGetValue(step, out var runs), $"Step '{step}' was not tracked.");
        foreach (var output in runs.SelectMany(r => r.Outputs))
        {
            Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"Step '{step}' output was {output.Reason}: {output.Value}");
        }
    }

    private static void AssertOutputsCached(GeneratorRunResult result)
    {
        var outputs = result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).ToList();
        Assert.NotEmpty(outputs);
        foreach (var output in outputs)
        {
            Assert.True(output.Reason == IncrementalStepRunReason.Cached, $"An output step ran again ({output.Reason}): {output.Value}");
        }
    }
}
