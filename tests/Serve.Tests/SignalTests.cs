using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Serve.Tests;

/// <summary>
/// A program embedding Serve keeps its signals: SIGTERM and SIGINT end an embedded host's process, and the Generic
/// Host mode drains (replicas are disposed) before it exits. Runs tests/fixtures/EmbeddedHost as a child process.
/// </summary>
public class SignalTests
{
    private const int SIGINT = 2;
    private const int SIGTERM = 15;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [DllImport("libc", SetLastError = true)]
#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code in the test project for one call
    private static extern int kill(int pid, int signal);
#pragma warning restore SYSLIB1054

    [Theory]
    [InlineData("embedded", SIGTERM)]
    [InlineData("embedded", SIGINT)]
    [InlineData("hosted", SIGTERM)]
    [InlineData("hosted", SIGINT)]
    public async Task A_signal_ends_a_program_that_embeds_Serve(string mode, int signal)
    {
        if (OperatingSystem.IsWindows())
            return; // POSIX signals; Windows has no kill(2).

        var output = new List<string>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "fixtures", "EmbeddedHost", "EmbeddedHost.dll"));
        start.ArgumentList.Add(mode);
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (output)
                output.Add(e.Data);
            if (e.Data == "ready")
                ready.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (output)
                    output.Add("stderr: " + e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(Bound);
            Assert.Equal(0, kill(process.Id, signal));
            using var exited = new CancellationTokenSource(Bound);
            try
            {
                await process.WaitForExitAsync(exited.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"The '{mode}' program was still running {Bound.TotalSeconds} s after signal {signal}: Serve took over the process's signals. Output:\n{Output()}");
            }
            process.WaitForExit(); // the output is read to its end
            if (mode == "hosted")
            {
                // The Generic Host's console lifetime drains Serve (its replicas are disposed) and exits normally.
                Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}. Output:\n{Output()}");
                Assert.Contains("disposed", Output());
            }
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }

        string Output()
        {
            lock (output)
                return string.Join('\n', output);
        }
    }
}
