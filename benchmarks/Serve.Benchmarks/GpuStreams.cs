using System.Diagnostics;
using Serve.Cuda;

namespace Serve.Benchmarks;

/// <summary>
/// Keeps about half the SMs of its device busy: each launch is one block of 1024 threads per SM for half of them, and
/// every thread runs a dependent multiply-add chain, so the kernel is compute-bound and cannot spread further.
/// </summary>
[Deployment(MaxOngoingRequests = 1)]
public sealed partial class SmBurner : IDisposable
{
    private const string Source = """
        extern "C" __global__ void burn(float* out, int iterations)
        {
            float x = threadIdx.x * 1e-3f;
            for (int i = 0; i < iterations; i++) x = x * 0.999999f + 1e-6f;
            out[blockIdx.x * blockDim.x + threadIdx.x] = x;
        }
        """;

    private readonly CudaReplicaGpu _gpu;
    private readonly CudaModule _module;
    private readonly CudaKernel _kernel;
    private readonly DeviceBuffer _out;

    public SmBurner(ReplicaContext context)
    {
        _gpu = context.Cuda();
        _module = _gpu.LoadModule(Source, "burn.cu");
        _kernel = _module.GetKernel("burn");
        Blocks = (uint)Math.Max(1, _gpu.Device.MultiprocessorCount / 2);
        _out = _gpu.Memory.Allocate<float>(Blocks * 1024L);
    }

    public uint Blocks { get; }

    /// <summary>Queues <paramref name="launches"/> kernels on the replica's stream and waits for them.</summary>
    public int Run(int launches, int iterations)
    {
        for (var i = 0; i < launches; i++)
            _kernel.Launch(_gpu.Stream, Blocks, 1024, _out, iterations);
        _gpu.Stream.Synchronize();
        return launches;
    }

    public string Where() => $"gpu{_gpu.Ordinal} × {_gpu.Fraction}, {Blocks} blocks of 1024 threads on {_gpu.Device.MultiprocessorCount} SMs";

    public void Dispose()
    {
        _out.Dispose();
        _module.Dispose();
    }
}

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/Serve.Benchmarks -- --gpu-streams</c>: the same total work (2K kernel
/// launches, each filling about half the SMs) done by one replica at <c>NumGpus = 1</c> on its one stream, then by
/// two replicas at <c>NumGpus = 0.5</c> on one device, K launches each on their own streams, called concurrently.
/// Prints the aggregate throughput of both and their ratio (goal: at least 1.7x, i.e. the streams really overlap).
/// </summary>
public static class GpuStreams
{
    private const int Rounds = 5;

    public static async Task<int> RunAsync(TextWriter output)
    {
        if (CudaDevices.DeviceCount == 0 || !Nvrtc.IsAvailable)
        {
            output.WriteLine($"GPU streams benchmark: no GPU available ({CudaDevices.UnavailableReason ?? Nvrtc.UnavailableReason ?? "no device"}); it needs an NVIDIA GPU, its driver and NVRTC.");
            return 2;
        }
        var device = CudaDevices.GetDevice(0);
        output.WriteLine($"Device: {device.Name}, {device.MultiprocessorCount} SMs, compute {device.ComputeCapability.Major}.{device.ComputeCapability.Minor}, driver CUDA {CudaDevices.DriverVersion}");

        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.UseCuda();
            // Only device 0: best fit puts both halves there anyway; this keeps other devices out of the picture.
            o.Resources.Gpus = [new GpuDevice(device.Ordinal, device.Name, device.TotalMemoryBytes)];
        });
        return await MeasureAsync(serve, output).ConfigureAwait(false);
    }

    private static async Task<int> MeasureAsync(ServeHost serve, TextWriter output)
    {
        var whole = await serve.RunAsync(SmBurner.Bind().WithOptions(o => o.NumGpus = 1), new RunOptions { Name = "whole" });
        output.WriteLine($"NumGpus = 1:   {await whole.WhereAsync()}");

        // Calibrate: about 2 ms per launch on one stream.
        var iterations = 1 << 14;
        while (true)
        {
            var t = Stopwatch.StartNew();
            await whole.RunAsync(10, iterations);
            if (t.Elapsed.TotalMilliseconds >= 20 || iterations >= 1 << 26)
                break;
            iterations *= 2;
        }
        const int launchesPerReplica = 200;
        output.WriteLine($"{iterations} iterations per thread per launch; {2 * launchesPerReplica} launches per round, {Rounds} rounds");

        var one = new List<double>();
        for (var r = 0; r < Rounds; r++)
        {
            var t = Stopwatch.StartNew();
            await whole.RunAsync(2 * launchesPerReplica, iterations);
            one.Add(2 * launchesPerReplica / t.Elapsed.TotalSeconds);
        }
        await serve.DeleteAsync("whole");

        var halves = await serve.RunAsync(SmBurner.Bind().WithOptions(o => { o.NumGpus = 0.5; o.NumReplicas = 2; }), new RunOptions { Name = "halves" });
        var where = new HashSet<string>();
        for (var i = 0; i < 20 && where.Count < 2; i++)
            where.Add(await halves.WhereAsync());
        foreach (var w in where)
            output.WriteLine($"NumGpus = 0.5: {w}");
        await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () => await halves.RunAsync(10, iterations))));
        var two = new List<double>();
        for (var r = 0; r < Rounds; r++)
        {
            var t = Stopwatch.StartNew();
            // MaxOngoingRequests = 1: the two concurrent calls land on the two replicas, one each.
            await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () => await halves.RunAsync(launchesPerReplica, iterations))));
            two.Add(2 * launchesPerReplica / t.Elapsed.TotalSeconds);
        }

        var medianOne = Median(one);
        var medianTwo = Median(two);
        output.WriteLine();
        output.WriteLine("| setup | launches/s (median of rounds) | min | max |");
        output.WriteLine("|---|---|---|---|");
        output.WriteLine($"| 1 replica, NumGpus = 1, one stream | {medianOne:F1} | {one.Min():F1} | {one.Max():F1} |");
        output.WriteLine($"| 2 replicas, NumGpus = 0.5, two streams | {medianTwo:F1} | {two.Min():F1} | {two.Max():F1} |");
        var ratio = medianTwo / medianOne;
        output.WriteLine($"Aggregate throughput ratio: {ratio:F2}x (goal: at least 1.7x)");
        return ratio >= 1.7 ? 0 : 1;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
