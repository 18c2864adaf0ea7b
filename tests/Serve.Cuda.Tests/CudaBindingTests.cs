namespace Serve.Cuda.Tests;

/// <summary>Serve.Cuda's bindings against the real driver. Skipped (with the reason) on a machine without one.</summary>
[Trait("Category", "Gpu")]
public class CudaBindingTests
{
    [GpuFact]
    public void Devices_report_name_uuid_memory_and_multiprocessors()
    {
        Assert.True(CudaDevices.DriverVersion >= 11000, $"driver CUDA version {CudaDevices.DriverVersion}");
        var devices = CudaDevices.GetDevices();
        Assert.Equal(CudaDevices.DeviceCount, devices.Count);
        Assert.NotEmpty(devices);
        foreach (var d in devices)
        {
            Assert.False(string.IsNullOrWhiteSpace(d.Name));
            Assert.Matches("^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", d.Uuid);
            Assert.True(d.TotalMemoryBytes > 1L << 30, $"{d.Name}: {d.TotalMemoryBytes} bytes");
            Assert.True(d.MultiprocessorCount > 0);
            Assert.True(d.ComputeCapability.Major >= 3);
            var (free, total) = CudaDevices.GetMemoryInfo(d.Ordinal);
            Assert.Equal(d.TotalMemoryBytes, total);
            Assert.InRange(free, 1, total);
        }
        var discovered = CudaGpuRuntime.Shared.DiscoverDevices();
        Assert.Equal(devices.Select(d => (d.Ordinal, d.Name, d.TotalMemoryBytes, (string?)d.Uuid)), discovered.Select(g => (g.Ordinal, g.Name, g.MemoryBytes, g.Uuid)));
    }

    [GpuFact]
    public void Streams_are_created_with_a_clamped_priority_synchronized_and_destroyed()
    {
        using var context = CudaContext.Retain(0);
        using var stream = context.CreateStream(priority: -1000);
        Assert.NotEqual(0, stream.Handle);
        Assert.True(stream.Priority > -1000, "the priority is clamped to the device's range");
        stream.Synchronize();
        using var other = context.CreateStream();
        Assert.NotEqual(stream.Handle, other.Handle);
        stream.Dispose();
        Assert.True(stream.IsDisposed);
        Assert.Throws<ObjectDisposedException>(stream.Synchronize);
    }

    [GpuFact]
    public void Device_memory_round_trips_through_the_budgeted_allocator()
    {
        using var context = CudaContext.Retain(0);
        using var stream = context.CreateStream();
        var (freeBefore, _) = CudaDevices.GetMemoryInfo(0);
        using var allocator = new GpuAllocator("Test#1", 0, 64L << 20, new DriverMemory(context));
        var data = Enumerable.Range(0, 1 << 20).Select(i => (float)i).ToArray();
        var buffer = allocator.Allocate<float>(data.Length);
        var (freeDuring, _) = CudaDevices.GetMemoryInfo(0);
        Assert.True(freeBefore - freeDuring >= data.Length * sizeof(float) - (2L << 20), $"the driver really allocated: free went from {freeBefore} to {freeDuring}");
        buffer.CopyFrom<float>(data, stream);
        var back = new float[data.Length];
        buffer.CopyTo<float>(back, stream);
        Assert.Equal(data, back);

        Assert.Throws<GpuMemoryBudgetException>(() => allocator.Allocate(61L << 20)); // 4 MiB in use + 61 MiB > 64 MiB
        buffer.Dispose();
        Assert.Equal(0, allocator.UsedBytes);
        using var big = allocator.Allocate(60L << 20); // fits once the first buffer is back
    }

    [GpuFact(needsNvrtc: true)]
    public void A_kernel_compiled_with_NVRTC_runs_on_a_stream()
    {
        Assert.True(Nvrtc.Version.Major >= 11);
        using var context = CudaContext.Retain(0);
        using var stream = context.CreateStream();
        var ptx = Nvrtc.CompileToPtx(Kernels.VectorAdd, "vector_add.cu", CudaDevices.GetDevice(0));
        Assert.Contains(".entry vector_add", ptx);
        using var module = CudaModule.LoadPtx(context, ptx);
        var kernel = module.GetKernel("vector_add");
        using var allocator = new GpuAllocator("Test#1", 0, 16L << 20, new DriverMemory(context));
        const int n = 100_000;
        var a = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var b = Enumerable.Range(0, n).Select(i => 0.5f * i).ToArray();
        using var da = allocator.Allocate<float>(n);
        using var db = allocator.Allocate<float>(n);
        using var dc = allocator.Allocate<float>(n);
        da.CopyFrom<float>(a, stream);
        db.CopyFrom<float>(b, stream);
        kernel.Launch(stream, (n + 255) / 256, 256, da, db, dc, n);
        var c = new float[n];
        dc.CopyTo<float>(c, stream);
        for (var i = 0; i < n; i++)
            Assert.Equal(1.5f * i, c[i]);
    }

    [GpuFact(needsNvrtc: true)]
    public void A_kernel_that_does_not_compile_reports_NVRTCs_log()
    {
        var e = Assert.Throws<NvrtcCompileException>(() => Nvrtc.CompileToPtx("extern \"C\" __global__ void k() { undeclared = 1; }", "broken.cu"));
        Assert.Equal("broken.cu", e.ProgramName);
        Assert.Contains("undeclared", e.Log);
        Assert.Contains("NVRTC could not compile 'broken.cu'", e.Message);
    }

    [GpuFact(needsNvrtc: true)]
    public void A_missing_kernel_name_is_a_CudaException_naming_it()
    {
        using var context = CudaContext.Retain(0);
        using var module = CudaModule.LoadPtx(context, Nvrtc.CompileToPtx(Kernels.VectorAdd, "v.cu", CudaDevices.GetDevice(0)));
        var e = Assert.Throws<CudaException>(() => module.GetKernel("vector_sub"));
        Assert.Contains("kernel 'vector_sub'", e.Message);
        Assert.Contains("CUDA_ERROR_NOT_FOUND", e.Message);
    }
}
