using System.Net;
using System.Runtime.InteropServices;
using HttpBench;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Serve;

// The server side of benchmarks/http/run.sh. Usage: HttpBench raw|serve [port]
//   raw    an ASP.NET Core minimal API: GET /hello -> Reply.Create() as JSON
//   serve  a Serve host whose HTTP ingress serves the Hello deployment under the route prefix /hello
// Both listen on 127.0.0.1 only, print "listening on <url>" once ready, and run until SIGTERM or Ctrl-C.
if (args.Length is < 1 or > 2 || args[0] is not ("raw" or "serve"))
{
    Console.Error.WriteLine("usage: HttpBench raw|serve [port]   (port: default 18080 for raw, 18081 for serve)");
    return 2;
}
var mode = args[0];
var port = args.Length == 2 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : mode == "raw" ? 18080 : 18081;

var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

if (mode == "raw")
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders(); // Serve's host logs nothing per request either (no logger configured).
    builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
    await using var app = builder.Build();
    app.MapGet("/hello", () => Reply.Create());
    await app.StartAsync();
    Console.WriteLine($"listening on http://127.0.0.1:{port}/hello (raw ASP.NET Core minimal API)");
    await stop.Task;
    await app.StopAsync();
}
else
{
    await using var serve = await ServeHost.StartAsync(o =>
    {
        o.Http.Host = "127.0.0.1";
        o.Http.Port = port;
    });
    await serve.RunAsync(Hello.Bind(), new RunOptions { Name = "hello", RoutePrefix = "/hello" });
    Console.WriteLine($"listening on {new Uri(serve.HttpAddress!, "hello")} (Serve HTTP ingress, deployment Hello)");
    await stop.Task;
    await serve.ShutdownAsync();
}
return 0;

void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    stop.TrySetResult();
}
