using Microsoft.AspNetCore.Mvc;

namespace Serve.Cli.Tests;

public sealed record Flower(double SepalLength, double SepalWidth);

[Deployment]
public partial class Classifier
{
    public string Call(Flower flower) => flower.SepalLength > 5 ? "big" : "small";
}

[Deployment]
public partial class Adder
{
    public int Call(int a, int b, CancellationToken cancellationToken) => a + b;
}

[Deployment]
public partial class Routed
{
    [HttpGet("hi/{name}")]
    public string Hi(string name) => "hi " + name;

    [HttpPost("echo")]
    public string Echo([FromBody] string text) => text;
}

/// <summary>The curl lines serve run prints: each one a request the application accepts.</summary>
public sealed class CurlExamplesTests
{
    private static string[] For(DeploymentDefinition definition) => CurlExamples.For(definition, "http://127.0.0.1:8000/app").ToArray();

    [Fact]
    public void A_record_parameter_gets_a_json_object_with_its_properties()
    {
        Assert.Equal(["curl -X POST http://127.0.0.1:8000/app -H 'content-type: application/json' -d '{\"sepalLength\":0,\"sepalWidth\":0}'"],
            For(Classifier.Bind().Definition));
    }

    [Fact]
    public void Several_parameters_get_an_object_keyed_by_name_and_the_token_is_left_out()
    {
        Assert.Equal(["curl -X POST http://127.0.0.1:8000/app -H 'content-type: application/json' -d '{\"a\":1,\"b\":1}'"],
            For(Adder.Bind().Definition));
    }

    [Fact]
    public void Http_endpoints_get_one_line_each_with_route_values_to_fill_in()
    {
        Assert.Equal([
            "curl -g 'http://127.0.0.1:8000/app/hi/{name}'",
            "curl -g -X POST 'http://127.0.0.1:8000/app/echo' -H 'content-type: application/json' -d '\"hello\"'",
        ], For(Routed.Bind().Definition));
    }
}
