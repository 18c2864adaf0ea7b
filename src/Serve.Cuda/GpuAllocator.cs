using Serve.Cuda.Native;

namespace Serve.Cuda;

/// <summary>Where a <see cref="GpuAllocator"/> gets device memory: the CUDA driver, or a fake in tests.</summary>
internal interface IDeviceMemory
{
    ulong Allocate(long bytes);
    void Free(ulong pointer);
}

/// <summary>
/// One replica's device memory, within its budget (<see cref="ReplicaGpu.MemoryBudgetBytes"/>). Allocating beyond
/// the budget throws <see cref="GpuMemoryBudgetException"/> before the driver is asked. Buffers still allocated when
/// the replica stops are freed then. Thread-safe.
/// </summary>
public sealed class GpuAllocator : IDisposable
{
    private readonly object _lock = new();
    private readonly HashSet<DeviceBuffer> _live = new(ReferenceEqualityComparer.Instance);
    private readonly IDeviceMemory _memory;
    private long _used;
    private bool _disposed;

    internal GpuAllocator(string replicaId, int ordinal, long budgetBytes, IDeviceMemory memory)
    {
        ReplicaId = replicaId;
        Ordinal = ordinal;
        BudgetBytes = budgetBytes;
        _memory = memory;
    }

    /// <summary>The replica the budget belongs to.</summary>
    public string ReplicaId { get; }

    /// <summary>The device.</summary>
    public int Ordinal { get; }

    /// <summary>The budget in bytes.</summary>
    public long BudgetBytes { get; }

    /// <summary>Bytes allocated now.</summary>
    public long UsedBytes
    {
        get
        {
            lock (_lock)
                return _used;
        }
    }

    /// <summary>Bytes left in the budget.</summary>
    public long AvailableBytes => BudgetBytes - UsedBytes;

    /// <summary>Allocates <paramref name="bytes"/> of device memory.</summary>
    /// <exception cref="GpuMemoryBudgetException">The allocation would exceed the replica's budget.</exception>
    /// <exception cref="CudaException">The driver refused (e.g. the device itself is out of memory).</exception>
    public DeviceBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (bytes > BudgetBytes - _used)
                throw new GpuMemoryBudgetException(ReplicaId, Ordinal, BudgetBytes, _used, bytes);
            _used += bytes;
        }
        ulong pointer;
        try
        {
            pointer = _memory.Allocate(bytes);
        }
        catch
        {
            lock (_lock)
                _used -= bytes;
            throw;
        }
        var buffer = new DeviceBuffer(this, pointer, bytes);
        lock (_lock)
            _live.Add(buffer);
        return buffer;
    }

    /// <summary>Allocates room for <paramref name="count"/> values of <typeparamref name="T"/>.</summary>
    public unsafe DeviceBuffer Allocate<T>(long count) where T : unmanaged => Allocate(checked(count * sizeof(T)));

    internal void Free(DeviceBuffer buffer)
    {
        lock (_lock)
        {
            if (!_live.Remove(buffer))
                return;
            _used -= buffer.Length;
        }
        _memory.Free(buffer.Pointer);
    }

    /// <summary>Frees every buffer still allocated; later allocations throw.</summary>
    public void Dispose()
    {
        DeviceBuffer[] left;
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            left = [.. _live];
        }
        foreach (var buffer in left)
            buffer.Dispose();
    }
}

/// <summary>Device memory allocated by a <see cref="GpuAllocator"/>; dispose to give it back to the budget.</summary>
public sealed class DeviceBuffer : IDisposable
{
    private readonly GpuAllocator _owner;
    private int _disposed;

    internal DeviceBuffer(GpuAllocator owner, ulong pointer, long length)
    {
        _owner = owner;
        Pointer = pointer;
        Length = length;
    }

    /// <summary>The device pointer (CUdeviceptr), for kernel arguments.</summary>
    public ulong Pointer { get; }

    /// <summary>Its size in bytes.</summary>
    public long Length { get; }

    /// <summary>True once freed.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Copies <paramref name="source"/> into the buffer, queued on <paramref name="stream"/>; synchronizes the stream before it returns.</summary>
    public unsafe void CopyFrom<T>(ReadOnlySpan<T> source, CudaStream stream) where T : unmanaged
    {
        var bytes = (long)source.Length * sizeof(T);
        Check(bytes);
        stream.Context.MakeCurrent();
        fixed (T* p = source)
            CudaException.Check(CudaDriver.cuMemcpyHtoDAsync(Pointer, p, (nuint)bytes, stream.Handle), "cuMemcpyHtoDAsync");
        stream.Synchronize();
    }

    /// <summary>Copies the start of the buffer into <paramref name="destination"/>, queued on <paramref name="stream"/> after its earlier work; synchronizes the stream.</summary>
    public unsafe void CopyTo<T>(Span<T> destination, CudaStream stream) where T : unmanaged
    {
        var bytes = (long)destination.Length * sizeof(T);
        Check(bytes);
        stream.Context.MakeCurrent();
        fixed (T* p = destination)
            CudaException.Check(CudaDriver.cuMemcpyDtoHAsync(p, Pointer, (nuint)bytes, stream.Handle), "cuMemcpyDtoHAsync");
        stream.Synchronize();
    }

    private void Check(long bytes)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (bytes > Length)
            throw new ArgumentException($"A copy of {bytes} bytes does not fit this device buffer of {Length} bytes.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            _owner.Free(this);
    }
}

/// <summary>Device memory from the CUDA driver on one context.</summary>
internal sealed class DriverMemory(CudaContext context) : IDeviceMemory
{
    public ulong Allocate(long bytes)
    {
        context.MakeCurrent();
        CudaException.Check(CudaDriver.cuMemAlloc(out var pointer, (nuint)bytes), "cuMemAlloc", $"{bytes} bytes on gpu{context.Ordinal}");
        return pointer;
    }

    public void Free(ulong pointer)
    {
        if (CudaDriver.cuCtxSetCurrent(context.Handle) == CudaStatus.Success)
            CudaDriver.cuMemFree(pointer);
    }
}
