using System.Collections.Concurrent;
using Serve.Cuda;

namespace Serve.Onnx.Tests;

/// <summary>A test that needs the real CUDA driver and a device; skipped with the reason elsewhere. Also marked Category=Gpu.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute()
    {
        if (!CudaDevices.IsAvailable)
            Skip = $"no CUDA driver on this machine: {CudaDevices.UnavailableReason}. Run on a GPU machine: dotnet test tests/Serve.Onnx.Tests --filter Category=Gpu";
        else if (CudaDevices.DeviceCount == 0)
            Skip = "the CUDA driver loads but reports no device.";
    }
}

/// <summary>Records the session plan its replica would open a session with (without opening one: the tests use the CPU runtime).</summary>
[Deployment(NumGpus = 0.5, NumReplicas = 2)]
public partial class GpuPlanRecorder
{
    public GpuPlanRecorder(ConcurrentQueue<(IReadOnlyDictionary<string, string>? Cuda, long Budget, nint Stream)> plans, ReplicaContext context)
    {
        var cuda = context.Cuda();
        plans.Enqueue((OnnxSessionPlan.For(context).CudaOptions, cuda.MemoryBudgetBytes, cuda.Stream.Handle));
    }

    public int Call() => 1;
}

/// <summary>Opens the tiny model on a GPU share.</summary>
[Deployment(NumGpus = 0.5)]
public partial class GpuDoubler
{
    public GpuDoubler(string modelPath, ReplicaContext context) => context.OnnxSession(modelPath);

    public int Call() => 1;
}

public sealed class OnnxGpuTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly string _model = TinyOnnx.WriteDoubler();

    public void Dispose() => File.Delete(_model);

    [Fact]
    public async Task A_gpu_share_with_the_cpu_only_onnx_runtime_fails_the_deploy_saying_which_package_to_use()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.Resources.UseLogicalGpus(1, 16L << 30); }).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(GpuDoubler.Bind(_model)).WaitAsync(Bound));

        Assert.Contains("Deployment 'GpuDoubler'", error.Message);
        Assert.Contains("could not add its CUDA execution provider", error.Message);
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu.Linux", error.Message);
    }

    [GpuFact]
    [Trait("Category", "Gpu")]
    public async Task Two_half_gpu_replicas_get_their_own_stream_and_half_the_device_memory_as_the_arena_limit()
    {
        var plans = new ConcurrentQueue<(IReadOnlyDictionary<string, string>? Cuda, long Budget, nint Stream)>();
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.UseCuda(); }).WaitAsync(Bound);
        await serve.RunAsync(GpuPlanRecorder.Bind(plans)).WaitAsync(Bound);

        Assert.Equal(2, plans.Count);
        foreach (var (options, budget, stream) in plans)
        {
            var cuda = options!;
            Assert.Equal(budget.ToString(), cuda["gpu_mem_limit"]);
            Assert.Equal(((long)stream).ToString(), cuda["user_compute_stream"]);
            Assert.Equal("1", cuda["has_user_compute_stream"]);
        }
        Assert.NotEqual(plans.First().Stream, plans.Last().Stream);
    }
}
