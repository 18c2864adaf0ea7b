using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Serve.Http;

/// <summary>
/// The minimal Kestrel app behind both the HTTP ingress and the admin API: one listener, one request delegate,
/// a start-up error that names the address and the option to change, and a bounded stop.
/// </summary>
internal sealed class KestrelListener : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);
    private WebApplication? _app;

    private KestrelListener(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The bound address (the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>
    /// What a listen address may be: an IPv6 address, a dotted-quad IPv4 address, or <c>localhost</c> (the IPv4
    /// loopback). The legacy short IPv4 forms <see cref="IPAddress.TryParse(string, out IPAddress)"/> also takes
    /// (<c>"8000"</c> is 0.0.31.64) are refused: they are typos far more often than addresses.
    /// </summary>
    public static bool TryParseHost(string host, out IPAddress address)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
            return true;
        }
        if (IPAddress.TryParse(host, out var parsed)
            && (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                || (host.Count(c => c == '.') == 3 && host.All(c => c == '.' || char.IsAsciiDigit(c)))))
        {
            address = parsed;
            return true;
        }
        address = IPAddress.None;
        return false;
    }

    /// <summary>Parses a host option: an IP address or "localhost".</summary>
    /// <param name="host">The configured host.</param>
    /// <param name="option">The option's name for the error, e.g. <c>ServeOptions.Http.Host</c>.</param>
    public static IPAddress ParseHost(string host, string option)
    {
        if (TryParseHost(host, out var address))
            return address;
        throw new ArgumentException($"{option} = '{host}' is not an IP address; use e.g. \"127.0.0.1\", \"0.0.0.0\" or \"localhost\".");
    }

    /// <summary>Starts listening; a port in use fails with a <see cref="ServeException"/> naming <paramref name="what"/>, the address and <paramref name="fix"/>.</summary>
    public static async Task<KestrelListener> StartAsync(
        IPAddress address, int port, long? maxRequestBodySize, RequestDelegate handler, string what, string fix, CancellationToken cancellationToken)
    {
        var host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        var display = $"http://{host}:{port}";
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        // The builder installs the console lifetime, which takes over SIGINT/SIGTERM (it cancels them and stops only
        // this internal app): a program embedding Serve could then no longer be stopped with Ctrl-C or by a process
        // manager. The process's signals belong to the application (its Generic Host, or its own handler).
        builder.Services.AddSingleton<IHostLifetime, PassiveLifetime>();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            if (maxRequestBodySize is { } max)
                k.Limits.MaxRequestBodySize = max;
            k.Listen(address, port);
        });
        var app = builder.Build();
        app.Run(handler);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new ServeException($"The Serve {what} could not listen on {display}: {e.Message} Another process may be using the port; {fix}", e);
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return new KestrelListener(app, bound is null ? new Uri(display) : new Uri(bound));
    }

    /// <summary>Stops accepting, gives in-flight requests a few seconds, then disposes.</summary>
    public async ValueTask DisposeAsync()
    {
        var app = Interlocked.Exchange(ref _app, null);
        if (app is null)
            return;
        try
        {
            using var cts = new CancellationTokenSource(StopTimeout);
            await app.StopAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            // In-flight requests outlived the stop timeout: DisposeAsync aborts them.
        }
        await app.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A lifetime that leaves the process's signals alone: the internal Kestrel app starts and stops only when Serve says.</summary>
internal sealed class PassiveLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
