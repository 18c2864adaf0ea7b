using System.Globalization;
using Microsoft.ML.OnnxRuntime;

namespace Serve.Onnx;

/// <summary>
/// The session options a replica's resources call for, as plain data so they can be checked without ONNX Runtime's
/// native library or a GPU: intra-op threads from <see cref="ReplicaContext.CpuThreads"/>, one inter-op thread, and on a
/// GPU share the CUDA execution provider's options (device, memory limit, the replica's own stream).
/// </summary>
internal sealed record OnnxSessionPlan(int IntraOpThreads, int InterOpThreads, IReadOnlyDictionary<string, string>? CudaOptions)
{
    /// <summary>The plan for <paramref name="context"/>: its CPU threads and, with a GPU share, its device and stream.</summary>
    public static OnnxSessionPlan For(ReplicaContext context) =>
        For(context.CpuThreads, context.Gpu, context.Gpu is Cuda.CudaReplicaGpu cuda ? cuda.Stream.Handle : 0);

    /// <param name="cpuThreads">The replica's CPU threads (NumCpus rounded up, or the processor count for NumCpus = 0).</param>
    /// <param name="gpu">The replica's GPU share, or null for a CPU replica.</param>
    /// <param name="userStream">The replica's CUDA stream handle (CUstream), or 0 on a logical GPU (no Serve.Cuda runtime).</param>
    public static OnnxSessionPlan For(int cpuThreads, ReplicaGpu? gpu, nint userStream)
    {
        if (gpu is null)
            return new OnnxSessionPlan(Math.Max(1, cpuThreads), 1, null);
        var cuda = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["device_id"] = gpu.Ordinal.ToString(CultureInfo.InvariantCulture),
            // ONNX Runtime's arena never grows past this: the replica's fraction of the device's memory.
            ["gpu_mem_limit"] = gpu.MemoryBudgetBytes.ToString(CultureInfo.InvariantCulture),
            // Grow the arena by what is asked, not in powers of two, so a replica does not reserve far past its needs.
            ["arena_extend_strategy"] = "kSameAsRequested",
        };
        if (userStream != 0)
        {
            // Kernels go on the replica's own stream, so two replicas sharing a device overlap instead of serializing.
            cuda["has_user_compute_stream"] = "1";
            cuda["user_compute_stream"] = ((long)userStream).ToString(CultureInfo.InvariantCulture);
        }
        return new OnnxSessionPlan(Math.Max(1, cpuThreads), 1, cuda);
    }

    /// <summary>Sets these options on <paramref name="options"/> (before the user's own configure callback runs).</summary>
    public void ApplyTo(SessionOptions options, string deploymentName, string replicaId)
    {
        options.IntraOpNumThreads = IntraOpThreads;
        options.InterOpNumThreads = InterOpThreads;
        options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
        if (CudaOptions is null)
            return;
        try
        {
            using var cuda = new OrtCUDAProviderOptions();
            cuda.UpdateOptions(new Dictionary<string, string>(CudaOptions));
            options.AppendExecutionProvider_CUDA(cuda);
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new InvalidOperationException(
                $"Deployment '{deploymentName}' (replica {replicaId}) holds a GPU share but ONNX Runtime could not add its CUDA execution provider: {e.Message} " +
                "Reference Microsoft.ML.OnnxRuntime.Gpu.Linux (with CUDA 12 and cuDNN 9 installed) instead of the CPU package Microsoft.ML.OnnxRuntime, " +
                "or set NumGpus = 0 to run the model on the CPU.", e);
        }
    }
}
