using Serve.Cuda.Native;

namespace Serve.Cuda;

/// <summary>
/// A retained reference to a device's primary context (the one context per device that every library in the
/// process shares). Driver calls need it current on the calling thread: Serve.Cuda's types call
/// <see cref="MakeCurrent"/> themselves; call it before your own driver calls. Dispose releases the reference.
/// </summary>
public sealed class CudaContext : IDisposable
{
    private readonly int _device;
    private int _disposed;

    private CudaContext(int ordinal, int device, nint handle)
    {
        Ordinal = ordinal;
        _device = device;
        Handle = handle;
    }

    /// <summary>The device ordinal.</summary>
    public int Ordinal { get; }

    /// <summary>The CUcontext handle.</summary>
    public nint Handle { get; }

    /// <summary>Retains the primary context of device <paramref name="ordinal"/>.</summary>
    public static CudaContext Retain(int ordinal)
    {
        CudaDevices.EnsureAvailable();
        CudaException.Check(CudaDriver.cuDeviceGet(out var device, ordinal), "cuDeviceGet", $"ordinal {ordinal}");
        CudaException.Check(CudaDriver.cuDevicePrimaryCtxRetain(out var context, device), "cuDevicePrimaryCtxRetain", $"gpu{ordinal}");
        return new CudaContext(ordinal, device, context);
    }

    /// <summary>Makes this context current on the calling thread.</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        CudaException.Check(CudaDriver.cuCtxSetCurrent(Handle), "cuCtxSetCurrent", $"gpu{Ordinal}");
    }

    /// <summary>Waits for all work in the context (every stream) to finish.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        CudaException.Check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /// <summary>Creates a stream on this context.</summary>
    /// <param name="priority">
    /// The stream priority: 0 is the default; lower numbers are higher priority, clamped to the device's range.
    /// </param>
    /// <param name="nonBlocking">True (the default) for a stream that does not synchronize with the legacy default stream.</param>
    public CudaStream CreateStream(int priority = 0, bool nonBlocking = true)
    {
        MakeCurrent();
        CudaException.Check(CudaDriver.cuCtxGetStreamPriorityRange(out var least, out var greatest), "cuCtxGetStreamPriorityRange");
        var clamped = Math.Clamp(priority, Math.Min(least, greatest), Math.Max(least, greatest));
        CudaException.Check(CudaDriver.cuStreamCreateWithPriority(out var stream, nonBlocking ? CudaDriver.StreamNonBlocking : 0, clamped), "cuStreamCreateWithPriority", $"gpu{Ordinal}");
        return new CudaStream(this, stream, clamped);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            CudaDriver.cuDevicePrimaryCtxRelease(_device);
    }
}

/// <summary>A CUDA stream on a context: work queued on it runs in order, and overlaps with other streams' work.</summary>
public sealed class CudaStream : IDisposable
{
    private int _disposed;

    internal CudaStream(CudaContext context, nint handle, int priority)
    {
        Context = context;
        Handle = handle;
        Priority = priority;
    }

    /// <summary>The context the stream belongs to.</summary>
    public CudaContext Context { get; }

    /// <summary>The CUstream handle, for your own driver calls or libraries that take a stream.</summary>
    public nint Handle { get; }

    /// <summary>The stream's priority (lower is higher priority).</summary>
    public int Priority { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Blocks until all work queued on the stream has finished.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        Context.MakeCurrent();
        CudaException.Check(CudaDriver.cuStreamSynchronize(Handle), "cuStreamSynchronize");
    }

    /// <summary>Waits (on the thread pool) until all work queued on the stream has finished.</summary>
    public Task SynchronizeAsync(CancellationToken cancellationToken = default) =>
        Task.Run(Synchronize, cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (CudaDriver.cuCtxSetCurrent(Context.Handle) == CudaStatus.Success)
            CudaDriver.cuStreamDestroy(Handle);
    }
}
