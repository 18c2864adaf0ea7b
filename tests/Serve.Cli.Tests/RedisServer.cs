using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Serve.Cli.Tests;

/// <summary>
/// A test that needs <c>redis-server</c>. It runs where redis-server is installed or can be installed (as root, with
/// apt-get: the test installs Debian's package); elsewhere it is skipped, saying why.
/// </summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        if (RedisServer.Executable() is null && RedisServer.WhyNotInstallable() is { } why)
            Skip = $"redis-server is not installed and cannot be installed here: {why}. Install it (Debian/Ubuntu: apt-get install redis-server) to run this test.";
    }
}

/// <summary>A redis-server process on a free loopback port, killed on dispose.</summary>
internal sealed class RedisServer : IDisposable
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private readonly Process _process;

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Address => $"redis://127.0.0.1:{Port}";

    public static string? Executable() =>
        new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server" }.FirstOrDefault(File.Exists);

    public static string? WhyNotInstallable()
    {
        if (!OperatingSystem.IsLinux())
            return "not Linux";
        if (!File.Exists("/usr/bin/apt-get"))
            return "no apt-get on this machine";
        return Environment.UserName == "root" ? null : $"installing needs root and this runs as '{Environment.UserName}'";
    }

    /// <summary>Installs redis-server with apt-get when missing (bounded), then starts it on a free loopback port and waits for PING.</summary>
    public static async Task<RedisServer> StartAsync(TimeSpan bound)
    {
        var executable = Executable() ?? await InstallAsync().ConfigureAwait(false);
        var port = FreePort();
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no" })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new RedisServer(process, port);
        try
        {
            var deadline = DateTime.UtcNow + bound;
            while (await Cli.ClusterNode.CheckStoreAsync(new Config.ClusterStoreAddress("127.0.0.1", port), TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false) is { } why)
            {
                if (process.HasExited || DateTime.UtcNow > deadline)
                {
                    string log;
                    lock (output)
                        log = output.ToString();
                    throw new InvalidOperationException($"redis-server on port {port} did not answer PING ({why}); its output:{Environment.NewLine}{log}");
                }
                await Task.Delay(50).ConfigureAwait(false);
            }
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    public void Dispose() => ChildProcesses.Stop(_process);

    private static async Task<string> InstallAsync()
    {
        await InstallLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Executable() is { } done)
                return done;
            if (WhyNotInstallable() is { } why)
                throw new InvalidOperationException($"redis-server is not installed and cannot be installed: {why}");
            var log = new StringBuilder();
            foreach (var args in new[] { "update -q", "install -y -q --no-install-recommends redis-server" })
            {
                var (code, output) = await RunAsync("/usr/bin/apt-get", args, TimeSpan.FromMinutes(4)).ConfigureAwait(false);
                log.AppendLine($"$ apt-get {args} (exit {code})").AppendLine(output);
                if (code != 0)
                    throw new InvalidOperationException($"installing redis-server failed:{Environment.NewLine}{log}");
            }
            return Executable() ?? throw new InvalidOperationException($"apt-get installed redis-server but it is not in /usr/bin:{Environment.NewLine}{log}");
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, string args, TimeSpan bound)
    {
        var start = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(bound).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"timed out after {bound}{Environment.NewLine}{await output.ConfigureAwait(false)}{await error.ConfigureAwait(false)}");
        }
        return (process.ExitCode, await output.ConfigureAwait(false) + await error.ConfigureAwait(false));
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>Stops a process a test started (and its children) and frees it; never throws, so it fits Dispose.</summary>
internal static class ChildProcesses
{
    public static void Stop(System.Diagnostics.Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited (or was never started) in between.
        }
        process.Dispose();
    }
}
