using System.Collections.Concurrent;

namespace Serve.Cuda.Tests;

internal static class Kernels
{
    public const string VectorAdd = """
        extern "C" __global__ void vector_add(const float* a, const float* b, float* c, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) c[i] = a[i] + b[i];
        }
        """;
}

/// <summary>What each GPU replica of a test saw, so a test can check it after the replica stopped.</summary>
public sealed class GpuSightings
{
    public ConcurrentBag<ReplicaGpu> Gpus { get; } = [];
}

[Deployment(NumGpus = 0.5)]
public partial class GpuProbe
{
    private readonly ReplicaContext _context;
    private readonly CudaKernel? _kernel;

    public GpuProbe(ReplicaContext context, GpuSightings sightings)
    {
        _context = context;
        sightings.Gpus.Add(context.Gpu!);
        if (context.Gpu is CudaReplicaGpu cuda && Nvrtc.IsAvailable)
            _kernel = cuda.LoadModule(Kernels.VectorAdd, "vector_add.cu").GetKernel("vector_add");
    }

    public long OverBudget()
    {
        var gpu = _context.Cuda();
        try
        {
            using var buffer = gpu.Memory.Allocate(gpu.MemoryBudgetBytes + 1);
            return -1;
        }
        catch (GpuMemoryBudgetException e)
        {
            return e.RequestedBytes;
        }
    }

    public float[] Add(float[] a, float[] b)
    {
        var gpu = _context.Cuda();
        using var da = gpu.Memory.Allocate<float>(a.Length);
        using var db = gpu.Memory.Allocate<float>(b.Length);
        using var dc = gpu.Memory.Allocate<float>(a.Length);
        da.CopyFrom<float>(a, gpu.Stream);
        db.CopyFrom<float>(b, gpu.Stream);
        _kernel!.Launch(gpu.Stream, (uint)((a.Length + 255) / 256), 256, da, db, dc, a.Length);
        var c = new float[a.Length];
        dc.CopyTo<float>(c, gpu.Stream);
        return c;
    }

    public string LogicalCuda()
    {
        try
        {
            _context.Cuda();
            return "cuda";
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }
}

[Deployment]
public partial class CpuOnly
{
    public string Call() => "cpu";
}
