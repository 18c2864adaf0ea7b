using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Serve.Generators;

namespace Serve.Generators.Tests;

/// <summary>Runs the generator on source text and compiles its output against the real Serve runtime.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest, DocumentationMode.Diagnose);

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(LoadReferences);

    public static ImmutableArray<MetadataReference> References => s_references.Value;

    /// <summary>Creates a library compilation; source <c>i</c> is the file <c>File{i}.cs</c>.</summary>
    public static CSharpCompilation CreateCompilation(IEnumerable<string> sources, IEnumerable<MetadataReference>? extraReferences = null, string assemblyName = "TestAssembly")
    {
        var trees = sources.Select((source, i) => CSharpSyntaxTree.ParseText(source, ParseOptions, path: $"File{i}.cs", encoding: Encoding.UTF8));
        return CSharpCompilation.Create(
            assemblyName,
            trees,
            References.AddRange(extraReferences ?? Array.Empty<MetadataReference>()),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, deterministic: true));
    }

    public static GeneratorDriver CreateDriver() => CSharpGeneratorDriver.Create(
        new[] { new DeploymentGenerator().AsSourceGenerator() },
        parseOptions: ParseOptions,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(params string[] sources) => Run(CreateCompilation(sources));

    public static GeneratorRun Run(Compilation compilation)
    {
        var driver = CreateDriver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        return new GeneratorRun(compilation, driver, output, diagnostics);
    }

    /// <summary>
    /// Asserts the output compiles with no error anywhere and no warning in generated code (documentation and
    /// nullable warnings included: user projects treat warnings as errors).
    /// </summary>
    public static void AssertCompiles(Compilation output)
    {
        var problems = output.GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error
                        || (d.Severity == DiagnosticSeverity.Warning && d.Location.SourceTree?.FilePath.EndsWith(".g.cs", StringComparison.Ordinal) == true))
            .ToList();
        Assert.True(problems.Count == 0, "The generated code does not compile cleanly:\n" + string.Join("\n", problems)
            + "\n\n" + string.Join("\n\n", output.SyntaxTrees.Where(t => t.FilePath.EndsWith(".g.cs", StringComparison.Ordinal)).Select(t => "// " + t.FilePath + "\n" + t)));
    }

    /// <summary>The source text a diagnostic points at (generator locations are file path + span).</summary>
    public static string TextAt(Compilation compilation, Diagnostic diagnostic)
    {
        var location = diagnostic.Location;
        var path = location.GetLineSpan().Path;
        var tree = compilation.SyntaxTrees.Single(t => t.FilePath == path);
        return tree.GetText().ToString(location.SourceSpan);
    }

    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        var serve = typeof(DeploymentHandle).Assembly.Location;
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => p.Length > 0 && !string.Equals(Path.GetFileName(p), "Serve.dll", StringComparison.OrdinalIgnoreCase))
            .Append(serve)
            .Distinct(StringComparer.Ordinal);
        return paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    }
}

internal sealed record GeneratorRun(Compilation Input, GeneratorDriver Driver, Compilation Output, ImmutableArray<Diagnostic> Diagnostics)
{
    public GeneratorRunResult Result => Driver.GetRunResult().Results.Single();

    public ImmutableArray<GeneratedSourceResult> Sources => Result.GeneratedSources;

    public string Source(string hintName) => Sources.Single(s => s.HintName == hintName).SourceText.ToString();
}

/// <summary>
/// Verify's convention without the package: each generated file is compared with a checked-in
/// <c>Snapshots/{Test}/{HintName}.verified.cs</c>; a difference writes <c>*.received.cs</c> beside it and fails.
/// Set <c>SERVE_ACCEPT_SNAPSHOTS=1</c> to write the verified files directly (then review them by eye).
/// </summary>
internal static class Snapshot
{
    public static void Verify(IEnumerable<GeneratedSourceResult> sources, [CallerMemberName] string testName = "")
    {
        var accept = Environment.GetEnvironmentVariable("SERVE_ACCEPT_SNAPSHOTS") == "1";
        var directory = Path.Combine(RepositoryRoot(), "tests", "Serve.Generators.Tests", "Snapshots", testName);
        Directory.CreateDirectory(directory);
        var failures = new List<string>();
        var expectedFiles = new HashSet<string>(StringComparer.Ordinal);

        foreach (var source in sources.OrderBy(s => s.HintName, StringComparer.Ordinal))
        {
            var stem = source.HintName.EndsWith(".cs", StringComparison.Ordinal) ? source.HintName[..^3] : source.HintName;
            var verified = Path.Combine(directory, stem + ".verified.cs");
            var received = Path.Combine(directory, stem + ".received.cs");
            expectedFiles.Add(Path.GetFileName(verified));
            var actual = Normalize(source.SourceText.ToString());

            if (accept)
            {
                File.WriteAllText(verified, actual);
                File.Delete(received);
                continue;
            }
            var expected = File.Exists(verified) ? Normalize(File.ReadAllText(verified)) : null;
            if (expected == actual)
            {
                File.Delete(received);
                continue;
            }
            File.WriteAllText(received, actual);
            failures.Add(expected is null
                ? $"  {stem}: no verified snapshot; review {received} and rename it to {Path.GetFileName(verified)}"
                : $"  {stem}: differs from the verified snapshot at {FirstDifference(expected, actual)}; compare {received} with {verified}");
        }

        foreach (var stale in Directory.GetFiles(directory, "*.verified.cs").Where(f => !expectedFiles.Contains(Path.GetFileName(f))))
        {
            if (accept)
                File.Delete(stale);
            else
                failures.Add($"  {Path.GetFileName(stale)}: verified snapshot of a file the generator no longer emits; delete it");
        }

        Assert.True(failures.Count == 0,
            $"Snapshot test '{testName}' failed:\n{string.Join("\n", failures)}\n" +
            "If the change is intended, accept it with SERVE_ACCEPT_SNAPSHOTS=1 dotnet test tests/Serve.Generators.Tests and review the diff.");
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n");

    private static string FirstDifference(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        for (var i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            var el = i < e.Length ? e[i] : "<end of file>";
            var al = i < a.Length ? a[i] : "<end of file>";
            if (el != al)
                return $"line {i + 1}:\n    verified: {el.Trim()}\n    received: {al.Trim()}";
        }
        return "line endings";
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Serve.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Cannot find the repository root (the folder with Serve.sln) above " + AppContext.BaseDirectory);
    }
}
