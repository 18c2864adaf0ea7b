using System.Net;
using System.Text;
using Microsoft.AspNetCore.Mvc;

namespace Serve.Tests;

public sealed record EndpointItem(int Id, string Name);

[Deployment]
public partial class HttpEndpoints
{
    [HttpGet("hi/{name}")]
    public string Hi([FromRoute] string name, [FromQuery] int times = 1) => string.Join(" ", Enumerable.Repeat("hi " + name, times));

    [HttpPost("items")]
    public EndpointItem Add([FromBody] EndpointItem item) => item with { Name = item.Name.ToUpperInvariant() };

    [HttpDelete("items/{id}")]
    public string Remove(int id) => "removed " + id;

    [HttpGet("whoami")]
    public string WhoAmI([FromHeader(Name = "x-user")] string user) => "you are " + user;

    public string Call() => "root";
}

public class HttpEndpointTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Endpoints_bind_route_query_body_and_header_values()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(Bound);
        await serve.RunAsync(HttpEndpoints.Bind(), new RunOptions { Name = "api", RoutePrefix = "/api" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        async Task<(HttpStatusCode, string)> Send(HttpMethod method, string path, string? json = null, string? user = null)
        {
            var request = new HttpRequestMessage(method, path);
            if (json is not null)
                request.Content = new StringContent(json, Encoding.UTF8, "application/json");
            if (user is not null)
                request.Headers.Add("x-user", user);
            var response = await http.SendAsync(request).WaitAsync(Bound);
            return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Bound));
        }

        Assert.Equal((HttpStatusCode.OK, "hi bob"), await Send(HttpMethod.Get, "/api/hi/bob"));
        Assert.Equal((HttpStatusCode.OK, "hi bob hi bob"), await Send(HttpMethod.Get, "/api/hi/bob?times=2"));
        Assert.Equal((HttpStatusCode.OK, """{"id":3,"name":"PEN"}"""), await Send(HttpMethod.Post, "/api/items", """{"id":3,"name":"pen"}"""));
        Assert.Equal((HttpStatusCode.OK, "removed 7"), await Send(HttpMethod.Delete, "/api/items/7"));
        Assert.Equal((HttpStatusCode.OK, "you are ann"), await Send(HttpMethod.Get, "/api/whoami", user: "ann"));
        Assert.Equal((HttpStatusCode.OK, "root"), await Send(HttpMethod.Get, "/api"));

        Assert.Equal(HttpStatusCode.BadRequest, (await Send(HttpMethod.Delete, "/api/items/abc")).Item1);
        Assert.Equal(HttpStatusCode.BadRequest, (await Send(HttpMethod.Get, "/api/hi/bob?times=x")).Item1);
        Assert.Equal(HttpStatusCode.BadRequest, (await Send(HttpMethod.Get, "/api/whoami")).Item1);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await Send(HttpMethod.Put, "/api/items")).Item1);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/api/nope")).Item1);
    }
}
