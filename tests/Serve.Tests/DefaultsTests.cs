using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Serve.Tests;

/// <summary>
/// The defaults work on a small machine: deployments that do not ask for CPUs reserve none, so the README's and Ray's
/// seed examples run on a 2-CPU host; a replica that waits for resources is logged at once and RunAsync can be
/// cancelled; an embedded host logs warnings to the console unless told otherwise.
/// </summary>
public class DefaultsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_seed_examples_run_with_default_options_on_a_two_CPU_host()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Port = 0; o.Resources.Cpus = 2; }).WaitAsync(Bound);

        // The README's first example: two replicas.
        var greeter = await serve.RunAsync(SeedGreeter.Bind("Hello world!"), new RunOptions { Name = "hello", RoutePrefix = "/hello" }).WaitAsync(Bound);
        Assert.Equal("Hello world!", await greeter.CallAsync());
        Assert.Equal("HELLO WORLD!!!", await greeter.ShoutAsync("!!"));

        // Composition: three deployments in one application.
        var driver = await serve.RunAsync(Driver.Bind(ModelA.Bind(), ModelB.Bind()), new RunOptions { Name = "composed", RoutePrefix = "/composed" }).WaitAsync(Bound);
        Assert.Equal(3 * 10 + (3 + 1), await driver.CallAsync(3));

        // One deployment with three replicas.
        var three = await serve.RunAsync(Greeter.Bind("three").WithOptions(o => o.NumReplicas = 3), new RunOptions { Name = "three", RoutePrefix = "/three" }).WaitAsync(Bound);
        Assert.Equal("three", await three.CallAsync());

        // Scaling up past the core count changes nothing either.
        await serve.RunAsync(SeedGreeter.Bind("Hello world!").WithOptions(o => o.NumReplicas = 4), new RunOptions { Name = "hello", RoutePrefix = "/hello" }).WaitAsync(Bound);

        var status = serve.GetStatus();
        Assert.All(status.Applications, a => Assert.Equal(ServeHealth.Healthy, a.Status));
        Assert.Equal(4, serve.GetDeployment("SeedGreeter").Replicas.Count);
        Assert.Equal(3, serve.GetDeployment("Greeter", "three").Replicas.Count);
        Assert.All(serve.ListDeployments(), d => Assert.Equal("", d.Message));

        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };
        Assert.Equal("Hello world!", await http.GetStringAsync("/hello"));
    }

    [Fact]
    public async Task A_deployment_that_asks_for_CPUs_reserves_them_a_waiting_replica_is_logged_at_once_and_RunAsync_can_be_cancelled()
    {
        var logs = new CapturingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs));
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Resources.Cpus = 2;
            o.LoggerFactory = loggerFactory;
        }).WaitAsync(Bound);
        await serve.RunAsync(Greeter.Bind("big").WithOptions(o => o.NumCpus = 2), new RunOptions { Name = "big" }).WaitAsync(Bound);

        using var cancel = new CancellationTokenSource();
        var pending = serve.RunAsync(Greeter.Bind("small").WithOptions(o => o.NumCpus = 1), new RunOptions { Name = "small", RoutePrefix = "/small" }, cancel.Token);

        const string expected = "Deployment 'small/Greeter' waits for resources: Unschedulable: needs 1 CPU, 0 of 2 free. Its replicas start as soon as " +
            "resources free up; to start them now, lower its NumCpus, NumGpus or Resources, delete another application, or give the host more (ServeOptions.Resources).";
        await TestUtil.WaitUntilAsync(() => logs.Lines.Any(l => l.Message == expected), "the waiting replica is logged");
        Assert.False(pending.IsCompleted);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(Bound));

        // Cancelling stopped the wait, not the deployment: it still waits, and starts once the CPUs are free.
        Assert.StartsWith("Unschedulable: needs 1 CPU", serve.GetDeployment("Greeter", "small").Message);
        await serve.DeleteAsync("big").WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => serve.GetDeployment("Greeter", "small").Status == ServeHealth.Healthy, "the waiting deployment starts");
        Assert.Equal("small", await serve.GetHandle<GreeterHandle>("Greeter", "small").CallAsync());
    }

    [Fact]
    public async Task An_embedded_host_logs_warnings_to_the_console_by_default()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "fixtures", "EmbeddedHost", "EmbeddedHost.dll"));
        start.ArgumentList.Add("pending");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Bound);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        var output = await stdout + await stderr;

        Assert.True(process.ExitCode == 0, output);
        Assert.Contains("Deployment 'second/Echo' waits for resources: Unschedulable: needs 1 CPU, 0 of 1 free.", output);
        Assert.Contains("second: RunAsync cancelled", output);
    }
}

[Deployment(NumReplicas = 2, MaxOngoingRequests = 8)]
public partial class SeedGreeter(string msg)
{
    public string Call() => msg;

    public Task<string> Shout(string suffix) => Task.FromResult(msg.ToUpperInvariant() + suffix);
}
