namespace Serve.Cuda.Tests;

/// <summary>
/// A test that needs the real CUDA driver (and NVRTC where it compiles kernels). On a machine without one it is
/// skipped with the reason; mark such tests <c>[Trait("Category", "Gpu")]</c> too, so
/// <c>dotnet test --filter Category=Gpu</c> runs exactly them on a GPU machine.
/// </summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute(bool needsNvrtc = false)
    {
        if (!CudaDevices.IsAvailable)
            Skip = $"no CUDA driver (libcuda.so.1) on this machine: {CudaDevices.UnavailableReason}. Run on a GPU machine: dotnet test tests/Serve.Cuda.Tests --filter Category=Gpu";
        else if (CudaDevices.DeviceCount == 0)
            Skip = "the CUDA driver loads but reports no device.";
        else if (needsNvrtc && !Nvrtc.IsAvailable)
            Skip = $"no NVRTC (libnvrtc.so.12) on this machine: {Nvrtc.UnavailableReason}.";
    }
}

/// <summary>A test of how Serve behaves without a CUDA driver; skipped where a driver is present.</summary>
public sealed class NoCudaFactAttribute : FactAttribute
{
    public NoCudaFactAttribute()
    {
        if (CudaDevices.IsAvailable && CudaDevices.DeviceCount > 0)
            Skip = "a CUDA driver and device are present; this test covers machines without one.";
    }
}
