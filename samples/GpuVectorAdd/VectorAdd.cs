using Serve;
using Serve.Cuda;

namespace GpuVectorAdd;

/// <summary>
/// Adds batches of vectors on the GPU. Each replica holds half a GPU: its constructor compiles the kernel with NVRTC
/// for its device and loads it into the device's primary context; each call runs on the replica's own stream, with
/// device buffers from its budgeted allocator (half the device's memory).
/// </summary>
[Deployment(NumReplicas = 2, NumGpus = 0.5, MaxOngoingRequests = 4)]
public sealed partial class VectorAdd : IDisposable
{
    private const string Source = """
        // c[k] = a[k] + b[k] for every element of a batch of vectors laid out one after another.
        extern "C" __global__ void vector_add(const float* a, const float* b, float* c, long long count)
        {
            long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
            long long stride = (long long)gridDim.x * blockDim.x;
            for (; k < count; k += stride) c[k] = a[k] + b[k];
        }
        """;

    private readonly CudaReplicaGpu _gpu;
    private readonly CudaModule _module;
    private readonly CudaKernel _kernel;
    private readonly string _where;

    public VectorAdd(ReplicaContext context)
    {
        _gpu = context.Cuda();
        _module = _gpu.LoadModule(Source, "vector_add.cu");
        _kernel = _module.GetKernel("vector_add");
        _where = $"{context.ReplicaId}: gpu{_gpu.Ordinal} ({_gpu.DeviceName}) × {_gpu.Fraction}, " +
                 $"budget {_gpu.MemoryBudgetBytes >> 20} MiB, stream 0x{_gpu.Stream.Handle:x}";
    }

    /// <summary>Where this replica runs.</summary>
    public string Where() => _where;

    /// <summary>Adds <paramref name="a"/> and <paramref name="b"/> (a batch of equal-length vectors, flattened).</summary>
    public float[] Call(float[] a, float[] b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"The batches differ in length ({a.Length} and {b.Length}); pass equal-length arrays.");
        using var da = _gpu.Memory.Allocate<float>(a.Length);
        using var db = _gpu.Memory.Allocate<float>(b.Length);
        using var dc = _gpu.Memory.Allocate<float>(a.Length);
        da.CopyFrom<float>(a, _gpu.Stream);
        db.CopyFrom<float>(b, _gpu.Stream);
        var blocks = (uint)Math.Min((a.Length + 255) / 256, _gpu.Device.MultiprocessorCount * 8);
        _kernel.Launch(_gpu.Stream, Math.Max(1, blocks), 256, da, db, dc, (long)a.Length);
        var c = new float[a.Length];
        dc.CopyTo<float>(c, _gpu.Stream); // queued after the kernel on the same stream; waits for both
        return c;
    }

    public void Dispose() => _module.Dispose();
}
