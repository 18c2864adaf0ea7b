using System.Text;
using Serve.Cuda.Native;

namespace Serve.Cuda;

/// <summary>One CUDA device as the driver reports it.</summary>
/// <param name="Ordinal">The device ordinal.</param>
/// <param name="Name">The device name.</param>
/// <param name="Uuid">The device UUID (<c>GPU-…</c>, as nvidia-smi prints it).</param>
/// <param name="TotalMemoryBytes">Total device memory.</param>
/// <param name="MultiprocessorCount">Streaming multiprocessors (SMs).</param>
/// <param name="ComputeCapability">Compute capability, e.g. <c>(9, 0)</c> for Hopper.</param>
public sealed record CudaDeviceInfo(int Ordinal, string Name, string Uuid, long TotalMemoryBytes, int MultiprocessorCount, (int Major, int Minor) ComputeCapability);

/// <summary>
/// Entry point to the CUDA driver: whether it is available (loaded lazily on first use, never required), and the
/// devices it sees.
/// </summary>
public static class CudaDevices
{
    /// <summary>True when libcuda.so.1 loads and <c>cuInit</c> succeeds.</summary>
    public static bool IsAvailable => CudaNative.TryLoadDriver(out _);

    /// <summary>Why the driver is not available, or <c>null</c> when it is.</summary>
    public static string? UnavailableReason => CudaNative.TryLoadDriver(out var reason) ? null : reason;

    /// <summary>Throws a clear <see cref="InvalidOperationException"/> when the driver is not available.</summary>
    public static void EnsureAvailable()
    {
        if (!CudaNative.TryLoadDriver(out var reason))
            throw new InvalidOperationException($"No CUDA driver: {reason}. Run on a machine with an NVIDIA GPU and driver, or schedule against logical GPUs (ServeOptions.Resources.UseLogicalGpus).");
    }

    /// <summary>The driver's CUDA version as <c>major * 1000 + minor * 10</c> (e.g. 12040).</summary>
    public static int DriverVersion
    {
        get
        {
            EnsureAvailable();
            CudaException.Check(CudaDriver.cuDriverGetVersion(out var version), "cuDriverGetVersion");
            return version;
        }
    }

    /// <summary>The number of devices (0 without a driver).</summary>
    public static int DeviceCount
    {
        get
        {
            if (!IsAvailable)
                return 0;
            var status = CudaDriver.cuDeviceGetCount(out var count);
            return status == CudaStatus.NoDevice ? 0 : Checked(status, count, "cuDeviceGetCount");
        }
    }

    /// <summary>Every device the driver sees, in ordinal order (empty without a driver).</summary>
    public static IReadOnlyList<CudaDeviceInfo> GetDevices()
    {
        var count = DeviceCount;
        var devices = new CudaDeviceInfo[count];
        for (var i = 0; i < count; i++)
            devices[i] = GetDevice(i);
        return devices;
    }

    /// <summary>One device's properties.</summary>
    public static unsafe CudaDeviceInfo GetDevice(int ordinal)
    {
        EnsureAvailable();
        CudaException.Check(CudaDriver.cuDeviceGet(out var device, ordinal), "cuDeviceGet", $"ordinal {ordinal}");
        var name = stackalloc byte[256];
        CudaException.Check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        var uuid = stackalloc byte[16];
        CudaException.Check(CudaDriver.cuDeviceGetUuid(uuid, device), "cuDeviceGetUuid");
        CudaException.Check(CudaDriver.cuDeviceTotalMem(out var total, device), "cuDeviceTotalMem");
        CudaException.Check(CudaDriver.cuDeviceGetAttribute(out var sms, CudaDriver.AttributeMultiprocessorCount, device), "cuDeviceGetAttribute");
        CudaException.Check(CudaDriver.cuDeviceGetAttribute(out var major, CudaDriver.AttributeComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        CudaException.Check(CudaDriver.cuDeviceGetAttribute(out var minor, CudaDriver.AttributeComputeCapabilityMinor, device), "cuDeviceGetAttribute");
        return new CudaDeviceInfo(ordinal, new string((sbyte*)name), FormatUuid(new ReadOnlySpan<byte>(uuid, 16)), (long)total, sms, (major, minor));
    }

    /// <summary>Free and total memory of a device now, as <c>cuMemGetInfo</c> reports it (retains its primary context).</summary>
    public static (long Free, long Total) GetMemoryInfo(int ordinal)
    {
        using var context = CudaContext.Retain(ordinal);
        context.MakeCurrent();
        CudaException.Check(CudaDriver.cuMemGetInfo(out var free, out var total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    internal static string FormatUuid(ReadOnlySpan<byte> b)
    {
        var hex = Convert.ToHexStringLower(b);
        return new StringBuilder("GPU-").Append(hex, 0, 8).Append('-').Append(hex, 8, 4).Append('-').Append(hex, 12, 4)
            .Append('-').Append(hex, 16, 4).Append('-').Append(hex, 20, 12).ToString();
    }

    private static int Checked(CudaStatus status, int value, string call)
    {
        CudaException.Check(status, call);
        return value;
    }
}
