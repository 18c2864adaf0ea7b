using System.Diagnostics;

namespace Serve.Dashboard.Tests;

/// <summary>
/// Debian's <c>chromium</c> package, which the browser tests drive through Playwright (Playwright's own browser
/// downloads need the internet; the package comes from the distribution's mirror like any other). Installed with
/// <c>apt-get install -y chromium</c> when missing and this process may (root, apt-get present: CI); set
/// <c>SERVE_CHROMIUM</c> to use another Chromium executable.
/// </summary>
internal static class Chromium
{
    private static readonly string[] s_candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

    public static string? Find()
    {
        if (Environment.GetEnvironmentVariable("SERVE_CHROMIUM") is { Length: > 0 } configured)
            return configured;
        return s_candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>Why the browser tests cannot run here, or <c>null</c> when Chromium is present or can be installed.</summary>
    public static string? Unavailable()
    {
        if (Find() is not null)
            return null;
        if (OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess && File.Exists("/usr/bin/apt-get"))
            return null;
        return "Skipped: the dashboard browser tests need Debian's chromium, which is not installed and cannot be installed here " +
            "(installing needs root and apt-get). Run `apt-get install -y chromium`, or set SERVE_CHROMIUM to a Chromium executable.";
    }

    /// <summary>The executable, installing the package first when it is missing.</summary>
    public static async Task<string> EnsureInstalledAsync()
    {
        if (Find() is { } found)
            return found;
        var log = new System.Text.StringBuilder();
        // A machine whose package lists are stale or empty needs an update first; try without it, it is slow.
        if (await AptAsync("install -y chromium", log) != 0)
        {
            await AptAsync("update", log);
            await AptAsync("install -y chromium", log);
        }
        return Find() ?? throw new InvalidOperationException(
            $"Installing Debian's chromium with apt-get failed; the dashboard browser tests need it. apt-get said:{Environment.NewLine}{Tail(log.ToString())}");
    }

    private static async Task<int> AptAsync(string arguments, System.Text.StringBuilder log)
    {
        var start = new ProcessStartInfo("apt-get", arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            log.AppendLine($"apt-get {arguments}: still running after 10 minutes; stopped.");
            return -1;
        }
        log.AppendLine($"$ apt-get {arguments}").Append(await output).Append(await error);
        return process.ExitCode;
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}

/// <summary>A browser test: skipped, with the reason, only where Chromium is missing and cannot be installed.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Chromium.Unavailable() is { } reason)
            Skip = reason;
    }
}
