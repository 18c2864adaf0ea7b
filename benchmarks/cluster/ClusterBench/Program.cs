using System.Diagnostics;
using System.Globalization;
using System.Net;
using ClusterBench;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Hosting;
using Serve;

// One node of benchmarks/cluster/run.sh: a Serve host with an Orleans silo on loopback (localhost clustering: node B
// is the primary silo, node A joins it). Deployments: RemoteEcho (replicas on B only) and LocalEcho (replicas on A only).
//   ClusterBench b [options]   runs until SIGTERM; prints "ready" once its silo and deployments are up
//   ClusterBench a [options]   joins B, measures handle calls (RemoteEcho: across nodes, LocalEcho: local) and prints
//                              one "row | ..." line per measure, then "bench done"; then serves HTTP (GET /remote,
//                              GET /local) on --http-port until SIGTERM, for wrk
// Options (defaults in brackets): --primary-port [11111] --silo-port [11111 for b, 11112 for a] --http-port [18090]
//   --replicas [4] --warmup SECONDS [5] --seconds SECONDS [5] --callers LIST [1,64] --wire FORMAT [default]
//   --filter TEXT (only the measures whose name contains TEXT, e.g. "across nodes")
var options = Options.Parse(args);
if (options is null)
    return 2;

var builder = Host.CreateApplicationBuilder();
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(c => c.SingleLine = true);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var isA = options.Role == "a";
builder.Services.AddServe(o =>
    {
        o.Http.Enabled = isA;
        o.Http.Host = "127.0.0.1";
        o.Http.Port = options.HttpPort;
        // The cluster controller places the replicas: node A offers the resource LocalEcho's replicas need, node B
        // the one RemoteEcho's need, so every RemoteEcho call from A crosses to B.
        o.Resources.Custom[isA ? "node-a" : "node-b"] = options.Replicas;
    })
    .UseOrleans(silo =>
    {
        if (isA)
            silo.UseLocalhostClustering(options.SiloPort, options.SiloPort + 20000, new IPEndPoint(IPAddress.Loopback, options.PrimaryPort));
        else
            silo.UseLocalhostClustering(options.SiloPort, options.SiloPort + 20000);
    }, cluster => options.ConfigureCluster(cluster))
    .AddApplication(RemoteEcho.Bind().WithOptions(o => { o.NumReplicas = options.Replicas; o.Resources["node-b"] = 1; }), new RunOptions { Name = "remote", RoutePrefix = "/remote" })
    .AddApplication(LocalEcho.Bind().WithOptions(o => { o.NumReplicas = options.Replicas; o.Resources["node-a"] = 1; }), new RunOptions { Name = "local", RoutePrefix = "/local" });

using var host = builder.Build();
await host.StartAsync();
if (!isA)
{
    Console.WriteLine("ready");
    await host.WaitForShutdownAsync();
    return 0;
}

// SIGTERM or Ctrl-C while measuring: stop at once (the measuring loops do not watch the host's lifetime); after the
// measures, the host stops gracefully.
var measuring = 1;
host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() =>
{
    if (Volatile.Read(ref measuring) == 1)
        Environment.Exit(130);
});
var serve = host.Services.GetRequiredService<ServeHost>();
var remote = serve.GetHandle<RemoteEchoHandle>("RemoteEcho", "remote");
var local = serve.GetHandle<LocalEchoHandle>("LocalEcho", "local");
var small = new Small("hello", 42, 0.5);
var vector = new float[384];
for (var i = 0; i < vector.Length; i++)
    vector[i] = MathF.Sin(i);

// The first call waits (queued on A) until A's router knows B's replicas; then check every answer once.
using (var ready = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
{
    try
    {
        Check("RemoteEcho.Echo", await remote.EchoAsync(small).AsTask().WaitAsync(ready.Token) == small);
    }
    catch (OperationCanceledException)
    {
        Console.Error.WriteLine("node A: no answer from RemoteEcho on node B within 60 s (did node B start, and on --primary-port?)");
        return 1;
    }
}
// Then until the controller has placed every replica (all of RemoteEcho's on B, all of LocalEcho's on A).
using (var placed = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
{
    int Running(string deployment) => serve.GetStatus().Applications.SelectMany(a => a.Deployments)
        .Where(d => d.Name == deployment).Sum(d => d.Replicas.Count(r => r.State == ReplicaState.Running));
    while (Running("RemoteEcho") < options.Replicas || Running("LocalEcho") < options.Replicas)
    {
        if (placed.IsCancellationRequested)
        {
            Console.Error.WriteLine($"node A: the cluster did not place {options.Replicas} replicas of RemoteEcho on B and of LocalEcho on A within 60 s");
            return 1;
        }
        await Task.Delay(50);
    }
}
Check("RemoteEcho.Vector", (await remote.VectorAsync(vector)).AsSpan().SequenceEqual(vector));
Check("LocalEcho.Echo", await local.EchoAsync(small) == small);
Check("LocalEcho.Vector", (await local.VectorAsync(vector)).AsSpan().SequenceEqual(vector));
Console.WriteLine("ready");

var wire = options.WireName;
foreach (var callers in options.Callers)
{
    await Measure.RunAsync($"local handle | small record | {callers}", callers, options, () => Discard(local.EchoAsync(small)));
    await Measure.RunAsync($"across nodes ({wire}) | small record | {callers}", callers, options, () => Discard(remote.EchoAsync(small)));
    await Measure.RunAsync($"local handle | 384 floats | {callers}", callers, options, () => Discard(local.VectorAsync(vector)));
    await Measure.RunAsync($"across nodes ({wire}) | 384 floats | {callers}", callers, options, () => Discard(remote.VectorAsync(vector)));
}
const int StreamItems = 1000;
await Measure.RunAsync($"local stream, ready items | small record | 1", 1, options, () => Drain(local.ItemsAsync(StreamItems), StreamItems), StreamItems);
await Measure.RunAsync($"stream across nodes ({wire}), ready items | small record | 1", 1, options, () => Drain(remote.ItemsAsync(StreamItems), StreamItems), StreamItems);
await Measure.RunAsync($"stream across nodes ({wire}), items produced one at a time | small record | 1", 1, options, () => Drain(remote.ProducedAsync(StreamItems), StreamItems), StreamItems);
Volatile.Write(ref measuring, 0);
Console.WriteLine("bench done");
await host.WaitForShutdownAsync();
return 0;

static async ValueTask Discard<T>(ValueTask<T> call) => await call.ConfigureAwait(false);

static async ValueTask Drain<T>(IAsyncEnumerable<T> items, int expected)
{
    var count = 0;
    await foreach (var _ in items.ConfigureAwait(false))
        count++;
    if (count != expected)
        throw new InvalidOperationException($"a stream of {expected} items ended after {count}");
}

static void Check(string what, bool ok)
{
    if (!ok)
    {
        Console.Error.WriteLine($"node A: {what} answered something other than what it was sent");
        Environment.Exit(1);
    }
}

internal static class Measure
{
    /// <summary>
    /// <paramref name="callers"/> concurrent loops, each awaiting one call after another: a warm-up, then a measured
    /// window. Prints "row | name | calls/s | p50 µs | p99 µs |" (latency of each call, calls/s over the window; for a
    /// stream of <paramref name="items"/> items, items/s and the latency of the whole stream).
    /// </summary>
    public static async Task RunAsync(string name, int callers, Options options, Func<ValueTask> call, int items = 1)
    {
        if (options.Filter is { } filter && !name.Contains(filter, StringComparison.OrdinalIgnoreCase))
            return;
        var phase = new int[1]; // 0 warm-up, 1 measuring, 2 stop
        var samples = new List<long>[callers];
        var loops = new Task[callers];
        for (var i = 0; i < callers; i++)
        {
            var list = samples[i] = new List<long>(1 << 16);
            loops[i] = Task.Run(async () =>
            {
                while (Volatile.Read(ref phase[0]) < 2)
                {
                    var start = Stopwatch.GetTimestamp();
                    await call().ConfigureAwait(false);
                    var elapsed = Stopwatch.GetTimestamp() - start;
                    if (Volatile.Read(ref phase[0]) == 1)
                        list.Add(elapsed);
                }
            });
        }
        await Task.Delay(TimeSpan.FromSeconds(options.WarmupSeconds));
        Volatile.Write(ref phase[0], 1);
        var begin = Stopwatch.GetTimestamp();
        await Task.Delay(TimeSpan.FromSeconds(options.Seconds));
        Volatile.Write(ref phase[0], 2);
        var window = Stopwatch.GetElapsedTime(begin);
        await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(60));
        var all = samples.SelectMany(s => s).ToArray();
        Array.Sort(all);
        if (all.Length == 0)
            throw new InvalidOperationException($"{name}: no call completed in {options.Seconds} s");
        double Micros(double q) => all[Math.Min(all.Length - 1, (int)(q * all.Length))] * 1_000_000.0 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"row | {name} | {(double)all.Length * items / window.TotalSeconds:F0} | {Micros(0.50):F1} | {Micros(0.99):F1} |"));
    }
}

internal sealed class Options
{
    public string Role { get; private set; } = "";
    public int PrimaryPort { get; private set; } = 11111;
    public int SiloPort { get; private set; }
    public int HttpPort { get; private set; } = 18090;
    public int Replicas { get; private set; } = 4;
    public double WarmupSeconds { get; private set; } = 5;
    public double Seconds { get; private set; } = 5;
    public int[] Callers { get; private set; } = [1, 64];
    public string? Wire { get; private set; }
    public string? Filter { get; private set; }

    public string WireName => Wire ?? "default";

    /// <summary>--wire json|messagepack|host sets <c>ServeClusterOptions.WireFormat</c>; without it, the default.</summary>
    public void ConfigureCluster(Serve.Orleans.ServeClusterOptions cluster)
    {
        if (Wire is not null)
        {
            cluster.WireFormat = Wire switch
            {
                "json" => BoundaryFormat.Json,
                "messagepack" => BoundaryFormat.MessagePack,
                "host" => BoundaryFormat.HostDefault,
                _ => throw new ArgumentException($"--wire {Wire}: use json, messagepack or host"),
            };
        }
    }

    public static Options? Parse(string[] args)
    {
        if (args.Length < 1 || args[0] is not ("a" or "b"))
            return Usage("the first argument is the node: a or b");
        var o = new Options { Role = args[0] };
        try
        {
            for (var i = 1; i < args.Length; i += 2)
            {
                var value = i + 1 < args.Length ? args[i + 1] : throw new FormatException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--primary-port": o.PrimaryPort = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--silo-port": o.SiloPort = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--http-port": o.HttpPort = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--replicas": o.Replicas = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--warmup": o.WarmupSeconds = double.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--seconds": o.Seconds = double.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--callers": o.Callers = value.Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray(); break;
                    case "--wire": o.Wire = value; break;
                    case "--filter": o.Filter = value; break;
                    default: return Usage($"unknown option '{args[i]}'");
                }
            }
        }
        catch (FormatException e)
        {
            return Usage(e.Message);
        }
        if (o.SiloPort == 0)
            o.SiloPort = o.Role == "b" ? o.PrimaryPort : o.PrimaryPort + 1;
        return o;
    }

    private static Options? Usage(string problem)
    {
        Console.Error.WriteLine($"ClusterBench: {problem}. Usage: ClusterBench a|b [--primary-port N] [--silo-port N] [--http-port N] [--replicas N] [--warmup S] [--seconds S] [--callers 1,64] [--wire json|messagepack|host] [--filter TEXT]");
        return null;
    }
}
