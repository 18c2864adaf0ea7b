using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Serve;
using Tracing;

// Serve under the Generic Host, with OpenTelemetry tracing wired to Serve's ActivitySource. Tracing is off unless asked:
//   dotnet run --project samples/Tracing -- --otlp http://localhost:4317   export spans to an OTLP collector (Jaeger, Tempo, Aspire)
//   dotnet run --project samples/Tracing -- --console                      print spans to the console
//   add --once to send three requests and exit instead of serving until Ctrl+C.
var otlp = args.SkipWhile(a => a != "--otlp").Skip(1).FirstOrDefault();
var console = args.Contains("--console");
var once = args.Contains("--once");

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddServe(o => o.Http.Port = once ? 0 : 8000)
    .AddApplication(Review.Bind(Words.Bind(), Lexicon.Bind()), new RunOptions { Name = "reviews", RoutePrefix = "/review" });
if (otlp is not null || console)
{
    builder.Services.AddOpenTelemetry()
        .ConfigureResource(r => r.AddService("serve-tracing-sample"))
        .WithTracing(tracing =>
        {
            tracing.AddSource(ServeDiagnostics.ActivitySourceName);
            if (otlp is not null)
                tracing.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
            if (console)
                tracing.AddConsoleExporter();
        });
}

using var host = builder.Build();
await host.StartAsync();
var serve = host.Services.GetRequiredService<ServeHost>();
Console.WriteLine(otlp is not null ? $"Tracing to {otlp}" : console ? "Tracing to the console" : "Tracing is off (pass --otlp URL or --console)");
Console.WriteLine($"curl -s '{serve.HttpAddress}review?text=I+love+this+great+phone'");

if (once)
{
    using var http = new HttpClient { BaseAddress = serve.HttpAddress };
    foreach (var text in new[] { "I love this great phone", "Slow and broken", "It arrived" })
        Console.WriteLine($"{text} -> {await http.GetStringAsync("review?text=" + Uri.EscapeDataString(text))}");
    await host.StopAsync();
    return;
}
await host.WaitForShutdownAsync();
