using System.Reflection;
using Serve.CodeGeneration;

namespace Serve.Generators.Tests;

/// <summary>
/// The contract between generated code (compiled into users' assemblies) and the runtime: generated code sets the
/// runtime's records with named properties, so a newer Serve can add properties without breaking it.
/// </summary>
public sealed class RuntimeContractTests
{
    [Theory]
    [InlineData(typeof(DeploymentDefinition))]
    [InlineData(typeof(DeploymentOptions))]
    [InlineData(typeof(DeploymentMethod))]
    [InlineData(typeof(HttpEndpoint))]
    [InlineData(typeof(HttpParameterBinding))]
    public void RecordsTheGeneratedCodeConstructsHaveOnlyAParameterlessConstructor(Type type)
    {
        var constructors = type.GetConstructors(BindingFlags.Public | BindingFlags.Instance);
        Assert.All(constructors, c => Assert.True(c.GetParameters().Length == 0,
            $"{type.Name} has the public constructor ({string.Join(", ", c.GetParameters().Select(p => p.ParameterType.Name + " " + p.Name))}); " +
            "generated code must set init properties instead, so new properties do not break it."));
        Assert.Single(constructors);
    }

    [Fact]
    public void GeneratedDefinitionSetsMethodsAndEndpointsByName()
    {
        var run = GeneratorHarness.Run("""
            using Serve;

            namespace Microsoft.AspNetCore.Mvc
            {
                [System.AttributeUsage(System.AttributeTargets.Method)] public sealed class HttpGetAttribute(string template = "") : System.Attribute { }
            }

            namespace Demo
            {
                using Microsoft.AspNetCore.Mvc;

                [Deployment]
                public partial class Api
                {
                    [HttpGet("hi/{name}")]
                    public string Hi(string name, int times = 1) => name;
                }
            }
            """);
        GeneratorHarness.AssertCompiles(run.Output);
        var source = string.Join("\n", run.Output.SyntaxTrees.Select(t => t.ToString()));
        Assert.Contains("new global::Serve.CodeGeneration.DeploymentMethod\n", source);
        Assert.Contains("new global::Serve.CodeGeneration.HttpEndpoint\n", source);
        Assert.Contains("new global::Serve.CodeGeneration.HttpParameterBinding { Source = ", source);
        Assert.DoesNotContain("DeploymentMethod(", source);
        Assert.DoesNotContain("HttpEndpoint(", source);
        Assert.DoesNotContain("HttpParameterBinding(", source);
    }
}
