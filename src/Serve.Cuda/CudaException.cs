using System.Runtime.InteropServices;
using Serve.Cuda.Native;

namespace Serve.Cuda;

/// <summary>A CUDA driver or NVRTC call failed; the message names the call and the driver's error name and text.</summary>
public sealed class CudaException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public CudaException(string call, int status, string message) : base(message)
    {
        Call = call;
        Status = status;
    }

    /// <summary>The API call that failed, e.g. <c>cuMemAlloc</c>.</summary>
    public string Call { get; }

    /// <summary>The CUresult (or nvrtcResult) it returned.</summary>
    public int Status { get; }

    internal static void Check(CudaStatus status, string call, string? what = null)
    {
        if (status != CudaStatus.Success)
            throw new CudaException(call, (int)status, $"{call} failed{(what is null ? "" : $" ({what})")}: {Describe(status)}.");
    }

    internal static string Describe(CudaStatus status)
    {
        string? name = null, text = null;
        try
        {
            if (CudaDriver.cuGetErrorName(status, out var namePtr) == CudaStatus.Success)
                name = Marshal.PtrToStringUTF8(namePtr);
            if (CudaDriver.cuGetErrorString(status, out var textPtr) == CudaStatus.Success)
                text = Marshal.PtrToStringUTF8(textPtr);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Describing an error must not raise another one.
        }
        return $"{name ?? "CUDA error"} ({(int)status}){(text is null ? "" : $": {text}")}";
    }
}

/// <summary>
/// A replica asked its <see cref="GpuAllocator"/> for more device memory than its budget (its GPU fraction × the
/// device's memory) leaves. Serve enforces the budget so that replicas sharing a device cannot starve each other
/// (Ray records fractions but does not enforce memory).
/// </summary>
public sealed class GpuMemoryBudgetException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public GpuMemoryBudgetException(string replicaId, int ordinal, long budgetBytes, long usedBytes, long requestedBytes)
        : base($"Replica '{replicaId}' asked for {Bytes(requestedBytes)} of GPU memory on gpu{ordinal}, but its budget is {Bytes(budgetBytes)} " +
               $"(its NumGpus fraction of the device) and {Bytes(usedBytes)} is already allocated. Free buffers you no longer need, " +
               "allocate less (e.g. a smaller batch), or raise the deployment's NumGpus.")
    {
        ReplicaId = replicaId;
        Ordinal = ordinal;
        BudgetBytes = budgetBytes;
        UsedBytes = usedBytes;
        RequestedBytes = requestedBytes;
    }

    /// <summary>The replica.</summary>
    public string ReplicaId { get; }
    /// <summary>The device.</summary>
    public int Ordinal { get; }
    /// <summary>The replica's budget in bytes.</summary>
    public long BudgetBytes { get; }
    /// <summary>Bytes the replica had allocated when it asked.</summary>
    public long UsedBytes { get; }
    /// <summary>Bytes it asked for.</summary>
    public long RequestedBytes { get; }

    internal static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 when bytes % (1L << 20) == 0 => $"{bytes / (double)(1L << 30):0.##} GiB ({bytes} bytes)",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.##} MiB ({bytes} bytes)",
        _ => $"{bytes} bytes",
    };
}
