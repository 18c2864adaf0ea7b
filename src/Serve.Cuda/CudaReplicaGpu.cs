namespace Serve.Cuda;

/// <summary>
/// A replica's share of a CUDA device (<see cref="ReplicaContext.Gpu"/> under <c>AddCuda()</c>; get it with
/// <c>context.Cuda()</c>): the device's primary context, a non-blocking stream of its own, and an allocator whose
/// budget is the replica's fraction of the device memory. The host releases all three when the replica stops,
/// after the user object is disposed.
/// </summary>
public sealed class CudaReplicaGpu : ReplicaGpu
{
    internal CudaReplicaGpu(GpuAssignment assignment, int streamPriority) : base(assignment)
    {
        Context = CudaContext.Retain(assignment.Devices[0].Ordinal);
        try
        {
            Stream = Context.CreateStream(streamPriority);
            Memory = new GpuAllocator(assignment.ReplicaId, Ordinal, MemoryBudgetBytes, new DriverMemory(Context));
            Device = CudaDevices.GetDevice(Ordinal);
        }
        catch
        {
            Stream?.Dispose();
            Context.Dispose();
            throw;
        }
    }

    /// <summary>The device's primary context (shared with every library in the process).</summary>
    public CudaContext Context { get; }

    /// <summary>The replica's own non-blocking stream: queue its work here so it overlaps with other replicas on the device.</summary>
    public CudaStream Stream { get; }

    /// <summary>The replica's budgeted device memory allocator.</summary>
    public GpuAllocator Memory { get; }

    /// <summary>The device's properties (name, SM count, compute capability).</summary>
    public CudaDeviceInfo Device { get; }

    /// <inheritdoc />
    public override bool IsPhysical => true;

    /// <summary>Compiles CUDA C++ with NVRTC for this device and loads it into the replica's context.</summary>
    public CudaModule LoadModule(string source, string name, params string[] options) =>
        CudaModule.LoadPtx(Context, Nvrtc.CompileToPtx(source, name, Device, options));

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!disposing)
            return;
        Memory.Dispose();
        Stream.Dispose();
        Context.Dispose();
    }
}

/// <summary>
/// Serve's GPU runtime on CUDA: discovers devices through the driver (none, and no error, without one) and gives
/// each GPU replica a <see cref="CudaReplicaGpu"/>.
/// </summary>
public sealed class CudaGpuRuntime : IGpuRuntime
{
    /// <summary>A runtime with default stream priority.</summary>
    public static CudaGpuRuntime Shared { get; } = new();

    /// <summary>The priority of each replica's stream (0 = default; lower is higher priority, clamped to the device's range).</summary>
    public int StreamPriority { get; init; }

    /// <inheritdoc />
    public IReadOnlyList<GpuDevice> DiscoverDevices()
    {
        if (!CudaDevices.IsAvailable)
            return [];
        return CudaDevices.GetDevices().Select(d => new GpuDevice(d.Ordinal, d.Name, d.TotalMemoryBytes) { Uuid = d.Uuid }).ToArray();
    }

    /// <inheritdoc />
    public ReplicaGpu Open(GpuAssignment assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        return new CudaReplicaGpu(assignment, StreamPriority);
    }
}
