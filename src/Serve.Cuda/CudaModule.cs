using System.Text;
using Serve.Cuda.Native;

namespace Serve.Cuda;

/// <summary>Loaded device code (PTX or cubin) on one context; dispose to unload it.</summary>
public sealed class CudaModule : IDisposable
{
    private readonly CudaContext _context;
    private int _disposed;

    private CudaModule(CudaContext context, nint handle)
    {
        _context = context;
        Handle = handle;
    }

    /// <summary>The CUmodule handle.</summary>
    public nint Handle { get; }

    /// <summary>Loads PTX text (e.g. from <see cref="Nvrtc.CompileToPtx(string, string, string[])"/>); the driver JIT-compiles it for the device.</summary>
    public static unsafe CudaModule LoadPtx(CudaContext context, string ptx)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(ptx);
        context.MakeCurrent();
        var image = Encoding.UTF8.GetBytes(ptx + "\0");
        nint module;
        fixed (byte* p = image)
            CudaException.Check(CudaDriver.cuModuleLoadData(out module, p), "cuModuleLoadData", $"gpu{context.Ordinal}");
        return new CudaModule(context, module);
    }

    /// <summary>A kernel of the module by its (unmangled, <c>extern "C"</c>) name.</summary>
    public CudaKernel GetKernel(string name)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _context.MakeCurrent();
        CudaException.Check(CudaDriver.cuModuleGetFunction(out var function, Handle, name), "cuModuleGetFunction", $"kernel '{name}' (declare it extern \"C\")");
        return new CudaKernel(_context, function, name);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && CudaDriver.cuCtxSetCurrent(_context.Handle) == CudaStatus.Success)
            CudaDriver.cuModuleUnload(Handle);
    }
}

/// <summary>A kernel function; <see cref="Launch"/> queues it on a stream.</summary>
public sealed class CudaKernel
{
    private readonly CudaContext _context;

    internal CudaKernel(CudaContext context, nint handle, string name)
    {
        _context = context;
        Handle = handle;
        Name = name;
    }

    /// <summary>The CUfunction handle.</summary>
    public nint Handle { get; }

    /// <summary>The kernel name.</summary>
    public string Name { get; }

    /// <summary>Queues the kernel on <paramref name="stream"/> (it returns before the kernel runs; synchronize the stream to wait).</summary>
    /// <param name="stream">The stream, usually the replica's (<c>context.Cuda().Stream</c>).</param>
    /// <param name="gridX">Blocks in the grid.</param>
    /// <param name="blockX">Threads per block.</param>
    /// <param name="arguments">The kernel's arguments in order: device buffers, ints, floats, … (each up to 8 bytes).</param>
    public unsafe void Launch(CudaStream stream, uint gridX, uint blockX, params ReadOnlySpan<KernelArg> arguments)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ObjectDisposedException.ThrowIf(stream.IsDisposed, stream);
        var values = stackalloc ulong[Math.Max(1, arguments.Length)];
        var pointers = stackalloc void*[Math.Max(1, arguments.Length)];
        for (var i = 0; i < arguments.Length; i++)
        {
            values[i] = arguments[i].Bits;
            pointers[i] = &values[i]; // little-endian: a 4-byte argument is the low half of its slot
        }
        _context.MakeCurrent();
        CudaException.Check(CudaDriver.cuLaunchKernel(Handle, gridX, 1, 1, blockX, 1, 1, 0, stream.Handle, pointers, null), "cuLaunchKernel", $"kernel '{Name}'");
    }
}

/// <summary>One kernel argument of up to 8 bytes; converts implicitly from the usual types and from <see cref="DeviceBuffer"/>.</summary>
public readonly struct KernelArg
{
    private KernelArg(ulong bits) => Bits = bits;

    internal ulong Bits { get; }

    /// <summary>A device pointer.</summary>
    public static implicit operator KernelArg(DeviceBuffer buffer) => new(buffer.Pointer);
    /// <summary>A 32-bit integer.</summary>
    public static implicit operator KernelArg(int value) => new((uint)value);
    /// <summary>A 32-bit unsigned integer.</summary>
    public static implicit operator KernelArg(uint value) => new(value);
    /// <summary>A 64-bit integer.</summary>
    public static implicit operator KernelArg(long value) => new((ulong)value);
    /// <summary>A 64-bit unsigned integer or device pointer.</summary>
    public static implicit operator KernelArg(ulong value) => new(value);
    /// <summary>A 32-bit float.</summary>
    public static implicit operator KernelArg(float value) => new(BitConverter.SingleToUInt32Bits(value));
    /// <summary>A 64-bit float.</summary>
    public static implicit operator KernelArg(double value) => new(BitConverter.DoubleToUInt64Bits(value));
}
