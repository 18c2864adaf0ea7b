using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;

namespace Serve.Tests;

// Deployments for HttpBindingTests: one complex parameter, strict JSON, streaming endpoints, failures.

public sealed record BindPerson(string Name, int Age);

public sealed class BindOrder
{
    public required string Item { get; set; }
    public int Quantity { get; set; } = 1;
    public string? Note { get; set; }
}

public sealed record BindBook(string Title, string? Author = null);

[Deployment]
public partial class HttpPersonEcho
{
    public BindPerson Call(BindPerson person) => person;
}

[Deployment]
public partial class HttpOrderDesk
{
    public string Call(BindOrder order) => $"{order.Item} x{order.Quantity} {order.Note ?? "-"}";
}

[Deployment]
public partial class HttpLibrary
{
    // The parameter is named like a property of its own type: {"title": "Dune"} is a whole BindBook.
    public string Call(BindBook title) => title.Title + "/" + (title.Author ?? "-");
}

[Deployment]
public partial class HttpGreeter
{
    public string Call(string name, string? title) => (title is null ? "" : title + " ") + name;
}

[Deployment(AllowUnknownJsonProperties = true)]
public partial class HttpLenientPerson
{
    public string Call(BindPerson person) => person.Name + " " + person.Age;
}

[Deployment]
public partial class HttpStreamEndpoints
{
    [HttpGet("count/{n}")]
    public async IAsyncEnumerable<int> Count(int n, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < n; i++)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return i;
        }
    }

    [HttpPost("people")]
    public async IAsyncEnumerable<BindPerson> Older([FromBody] BindPerson[] people)
    {
        foreach (var p in people)
        {
            await Task.Yield();
            yield return p with { Age = p.Age + 1 };
        }
    }
}

[Deployment]
public partial class HttpFailedModel
{
    // Stands in for the router, which throws this when the deployment failed and has no replica left.
    public string Call() => throw new DeploymentFailedException("shop", "Model",
        "Deployment 'Model' of application 'shop' failed: its constructor threw FileNotFoundException: weights.bin was not found. Fix it and redeploy.", null);
}

public static class BindingApps
{
    public static Application<HttpPersonEchoHandle> Person() => HttpPersonEcho.Bind();
}

public class HttpBindingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ServeHost> StartAsync(Action<ServeOptions>? configure = null) =>
        ServeHost.StartAsync(o =>
        {
            o.Http.Port = 0;
            configure?.Invoke(o);
        }).WaitAsync(Bound);

    private static HttpClient Client(ServeHost serve) => new() { BaseAddress = serve.HttpAddress, Timeout = Bound };

    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(HttpClient http, string path, string json, string? accept = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (accept is not null)
            request.Headers.Add("accept", accept);
        var response = await http.SendAsync(request).WaitAsync(Bound);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Bound));
    }

    private static async Task<(HttpStatusCode Status, string Body, string? ContentType)> GetAsync(HttpClient http, string path, string? accept = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (accept is not null)
            request.Headers.Add("accept", accept);
        var response = await http.SendAsync(request).WaitAsync(Bound);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Bound), response.Content.Headers.ContentType?.MediaType);
    }

    private static async Task<ServeHost> StartBindingAppsAsync()
    {
        var serve = await StartAsync();
        await serve.RunAsync(HttpPersonEcho.Bind(), new RunOptions { Name = "person", RoutePrefix = "/person" }).WaitAsync(Bound);
        await serve.RunAsync(HttpOrderDesk.Bind(), new RunOptions { Name = "order", RoutePrefix = "/order" }).WaitAsync(Bound);
        await serve.RunAsync(HttpLibrary.Bind(), new RunOptions { Name = "book", RoutePrefix = "/book" }).WaitAsync(Bound);
        await serve.RunAsync(HttpGreeter.Bind(), new RunOptions { Name = "greet", RoutePrefix = "/greet" }).WaitAsync(Bound);
        await serve.RunAsync(HttpAdder.Bind(), new RunOptions { Name = "math", RoutePrefix = "/math" }).WaitAsync(Bound);
        await serve.RunAsync(HttpEcho.Bind(), new RunOptions { Name = "echo", RoutePrefix = "/echo" }).WaitAsync(Bound);
        return serve;
    }

    [Fact]
    public async Task One_complex_parameter_binds_the_whole_body()
    {
        await using var serve = await StartBindingAppsAsync();
        using var http = Client(serve);

        Assert.Equal((HttpStatusCode.OK, """{"name":"Ann","age":3}"""), await PostAsync(http, "/person", """{"name":"Ann","age":3}"""));
        // The object keyed by the parameter name still works when the type has no property of that name.
        Assert.Equal((HttpStatusCode.OK, """{"name":"Bo","age":4}"""), await PostAsync(http, "/person", """{"person":{"name":"Bo","age":4}}"""));

        Assert.Equal((HttpStatusCode.OK, "pen x1 -"), await PostAsync(http, "/order", """{"item":"pen"}"""));
        Assert.Equal((HttpStatusCode.OK, "ink x2 blue"), await PostAsync(http, "/order", """{"item":"ink","quantity":2,"note":"blue"}"""));
        Assert.Equal((HttpStatusCode.OK, "cap x3 -"), await PostAsync(http, "/order", """{"order":{"item":"cap","quantity":3}}"""));

        // The type has a 'title' property: the one-property object is the whole BindBook, not a wrapper.
        Assert.Equal((HttpStatusCode.OK, "Dune/-"), await PostAsync(http, "/book", """{"title":"Dune"}"""));
        Assert.Equal((HttpStatusCode.OK, "Emma/Austen"), await PostAsync(http, "/book", """{"title":"Emma","author":"Austen"}"""));

        // A JSON array for one complex parameter is the positional form.
        Assert.Equal((HttpStatusCode.OK, """{"name":"Cy","age":5}"""), await PostAsync(http, "/person", """[{"name":"Cy","age":5}]"""));
    }

    [Fact]
    public async Task Property_and_parameter_names_bind_case_insensitively_so_a_result_can_be_sent_back()
    {
        await using var serve = await StartBindingAppsAsync();
        using var http = Client(serve);

        var first = await PostAsync(http, "/person", """{"Name":"Ann","AGE":3}""");
        Assert.Equal((HttpStatusCode.OK, """{"name":"Ann","age":3}"""), first);
        Assert.Equal(first, await PostAsync(http, "/person", first.Body));
        Assert.Equal((HttpStatusCode.OK, """{"name":"Di","age":1}"""), await PostAsync(http, "/person", """{"PERSON":{"NAME":"Di","age":1}}"""));
        Assert.Equal((HttpStatusCode.OK, "Dr Who"), await PostAsync(http, "/greet", """{"Name":"Who","TITLE":"Dr"}"""));
        Assert.Equal((HttpStatusCode.OK, "pen x2 -"), await PostAsync(http, "/order", """{"ITEM":"pen","Quantity":2}"""));
    }

    [Fact]
    public async Task Missing_required_values_nulls_and_unknown_properties_are_400_naming_the_field()
    {
        await using var serve = await StartBindingAppsAsync();
        using var http = Client(serve);

        async Task BadRequest(string path, string json, string field)
        {
            var (status, body) = await PostAsync(http, path, json);
            Assert.True(status == HttpStatusCode.BadRequest, $"POST {path} {json}: expected 400, got {(int)status} {body}");
            Assert.StartsWith("Bad request:", body);
            Assert.Contains("'" + field + "'", body, StringComparison.OrdinalIgnoreCase);
        }

        // A record's constructor parameter without a default, and a 'required' member.
        await BadRequest("/person", """{"name":"Ann"}""", "age");
        await BadRequest("/order", """{"quantity":2}""", "item");
        // JSON null for a non-nullable member or parameter.
        await BadRequest("/person", """{"name":null,"age":1}""", "name");
        await BadRequest("/order", """{"item":null}""", "item");
        await BadRequest("/greet", """{"name":null,"title":"Dr"}""", "name");
        await BadRequest("/echo", """{"name":null}""", "name");
        await BadRequest("/echo", "null", "name");
        await BadRequest("/math", """{"a":null,"b":2}""", "a");
        // Unknown properties, in a complex argument and among the parameter names.
        await BadRequest("/person", """{"name":"Ann","age":3,"email":"a@b.c"}""", "email");
        await BadRequest("/order", """{"item":"pen","colour":"red"}""", "colour");
        await BadRequest("/math", """{"a":1,"b":2,"c":3}""", "c");

        // A nullable parameter takes null; an optional member may be left out.
        Assert.Equal((HttpStatusCode.OK, "Who"), await PostAsync(http, "/greet", """{"name":"Who","title":null}"""));
        Assert.Equal((HttpStatusCode.OK, "Dune/-"), await PostAsync(http, "/book", """{"title":"Dune","author":null}"""));
    }

    [Fact]
    public async Task AllowUnknownJsonProperties_lets_lenient_clients_send_extra_properties()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpLenientPerson.Bind(), new RunOptions { Name = "lenient", RoutePrefix = "/lenient" }).WaitAsync(Bound);
        await serve.RunAsync(HttpAdder.Bind().WithOptions(o => o.AllowUnknownJsonProperties = true),
            new RunOptions { Name = "math", RoutePrefix = "/math" }).WaitAsync(Bound);
        using var http = Client(serve);

        Assert.Equal((HttpStatusCode.OK, "Ann 3"), await PostAsync(http, "/lenient", """{"name":"Ann","age":3,"email":"a@b.c"}"""));
        var sum = await PostAsync(http, "/math", """{"a":1,"b":2,"c":3}""");
        Assert.Equal(HttpStatusCode.OK, sum.Status);
        Assert.Contains("\"sum\":3", sum.Body);

        // Still strict about what is missing.
        var missing = await PostAsync(http, "/lenient", """{"name":"Ann","email":"a@b.c"}""");
        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.Contains("'age'", missing.Body);
    }

    [Fact]
    public void A_config_file_sets_allow_unknown_json_properties()
    {
        var dir = Directory.CreateTempSubdirectory("serve-json-config-").FullName;
        var import = typeof(BindingApps).Assembly.Location.Replace('\\', '/') + ":Serve.Tests.BindingApps.Person";
        var path = Path.Combine(dir, "serve.yaml");
        File.WriteAllText(path, $"""
            applications:
              - import: {import}
                deployments:
                  - name: HttpPersonEcho
                    allow_unknown_json_properties: true
            """);
        Assert.True(Config.ServeConfigLoader.Load(path).Applications[0].Application.GetOptions().AllowUnknownJsonProperties);

        File.WriteAllText(path, $"""
            applications:
              - import: {import}
                deployments:
                  - name: HttpPersonEcho
                    allow_unknown_json_properties: yes please
            """);
        var e = Assert.Throws<Config.ServeConfigException>(() => Config.ServeConfigLoader.Load(path));
        Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].allow_unknown_json_properties" && x.Reason.StartsWith("expected true or false"));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Endpoints_returning_IAsyncEnumerable_stream_NDJSON_or_SSE()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpStreamEndpoints.Bind(), new RunOptions { Name = "api", RoutePrefix = "/api" }).WaitAsync(Bound);
        using var http = Client(serve);

        var ndjson = await GetAsync(http, "/api/count/3");
        Assert.Equal((HttpStatusCode.OK, "0\n1\n2\n", "application/x-ndjson"), ndjson);

        var sse = await GetAsync(http, "/api/count/2", accept: "text/event-stream");
        Assert.Equal((HttpStatusCode.OK, "data: 0\n\ndata: 1\n\n", "text/event-stream"), sse);

        var people = await PostAsync(http, "/api/people", """[{"name":"Ann","age":3},{"name":"Bo","age":4}]""");
        Assert.Equal((HttpStatusCode.OK, "{\"name\":\"Ann\",\"age\":4}\n{\"name\":\"Bo\",\"age\":5}\n"), people);

        var bad = await GetAsync(http, "/api/count/x");
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
    }

    [Theory]
    [InlineData("/echo")] // the ingress reads the body
    [InlineData("/raw")]  // the method reads the HttpRequest's body itself
    public async Task A_malformed_chunked_body_is_400(string path)
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpEcho.Bind(), new RunOptions { Name = "echo", RoutePrefix = "/echo" }).WaitAsync(Bound);
        await serve.RunAsync(HttpRaw.Bind(), new RunOptions { Name = "raw", RoutePrefix = "/raw" }).WaitAsync(Bound);
        var address = serve.HttpAddress!;

        using var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port).WaitAsync(Bound);
        var stream = client.GetStream();
        var request = $"POST {path}?who=me HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request)).AsTask().WaitAsync(Bound);

        var response = new MemoryStream();
        var buffer = new byte[4096];
        while (!Encoding.ASCII.GetString(response.ToArray()).Contains("\r\n\r\n"))
        {
            var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(Bound);
            if (n == 0)
                break;
            response.Write(buffer, 0, n);
        }
        var text = Encoding.ASCII.GetString(response.ToArray());
        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", text);
    }

    [Fact]
    public async Task A_failed_deployment_is_503_with_the_reason()
    {
        await using var serve = await StartAsync();
        await serve.RunAsync(HttpFailedModel.Bind()).WaitAsync(Bound);
        using var http = Client(serve);

        var (status, body, _) = await GetAsync(http, "/");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.StartsWith("Service unavailable:", body);
        Assert.Contains("Deployment 'Model' of application 'shop' failed", body);
        Assert.Contains("weights.bin", body);
    }
}

public sealed class StubbornProbe
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Returned { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Ignores cancellation: it returns only when the test releases it.</summary>
[Deployment(MaxOngoingRequests = 1, MaxQueuedRequests = 0)]
public partial class HttpStubborn(StubbornProbe probe)
{
    public async Task<string> Call(int x)
    {
        probe.Entered.TrySetResult();
        try
        {
            await probe.Release.Task;
            return x < 0 ? throw new InvalidOperationException("late failure " + x) : "done " + x;
        }
        finally
        {
            probe.Returned.TrySetResult();
        }
    }
}
