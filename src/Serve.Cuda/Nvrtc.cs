using System.Runtime.InteropServices;
using System.Text;
using Serve.Cuda.Native;

namespace Serve.Cuda;

/// <summary>NVRTC, CUDA's runtime compiler: CUDA C++ source to PTX, at run time (loaded lazily from libnvrtc.so.12).</summary>
public static class Nvrtc
{
    /// <summary>True when libnvrtc.so.12 loads.</summary>
    public static bool IsAvailable => CudaNative.TryLoadNvrtc(out _);

    /// <summary>Why NVRTC is not available, or <c>null</c>.</summary>
    public static string? UnavailableReason => CudaNative.TryLoadNvrtc(out var reason) ? null : reason;

    /// <summary>NVRTC's version.</summary>
    public static Version Version
    {
        get
        {
            EnsureAvailable();
            Check(NvrtcNative.nvrtcVersion(out var major, out var minor), "nvrtcVersion");
            return new Version(major, minor);
        }
    }

    /// <summary>
    /// Compiles <paramref name="source"/> to PTX for the compute capability of <paramref name="device"/> (declare
    /// kernels <c>extern "C"</c> so their names are not mangled).
    /// </summary>
    /// <exception cref="NvrtcCompileException">The source does not compile; the message carries NVRTC's log.</exception>
    public static string CompileToPtx(string source, string name, CudaDeviceInfo device, params string[] options) =>
        CompileToPtx(source, name, [$"--gpu-architecture=compute_{device.ComputeCapability.Major}{device.ComputeCapability.Minor}", .. options]);

    /// <summary>Compiles <paramref name="source"/> to PTX with the given NVRTC options.</summary>
    /// <exception cref="NvrtcCompileException">The source does not compile; the message carries NVRTC's log.</exception>
    public static unsafe string CompileToPtx(string source, string name, params string[] options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(name);
        EnsureAvailable();
        Check(NvrtcNative.nvrtcCreateProgram(out var program, source, name, 0, 0, 0), "nvrtcCreateProgram");
        try
        {
            var encoded = options.Select(o => Encoding.UTF8.GetBytes(o + "\0")).ToArray();
            var handles = encoded.Select(b => GCHandle.Alloc(b, GCHandleType.Pinned)).ToArray();
            int result;
            try
            {
                var pointers = stackalloc byte*[Math.Max(1, encoded.Length)];
                for (var i = 0; i < encoded.Length; i++)
                    pointers[i] = (byte*)handles[i].AddrOfPinnedObject();
                result = NvrtcNative.nvrtcCompileProgram(program, encoded.Length, pointers);
            }
            finally
            {
                foreach (var h in handles)
                    h.Free();
            }
            if (result != 0)
                throw new NvrtcCompileException(name, ErrorString(result), ReadLog(program));
            Check(NvrtcNative.nvrtcGetPTXSize(program, out var size), "nvrtcGetPTXSize");
            var ptx = new byte[(int)size];
            fixed (byte* p = ptx)
                Check(NvrtcNative.nvrtcGetPTX(program, p), "nvrtcGetPTX");
            return Encoding.UTF8.GetString(ptx, 0, Math.Max(0, ptx.Length - 1));
        }
        finally
        {
            NvrtcNative.nvrtcDestroyProgram(ref program);
        }
    }

    private static void EnsureAvailable()
    {
        if (!CudaNative.TryLoadNvrtc(out var reason))
            throw new InvalidOperationException($"NVRTC is not available: {reason}. Install the CUDA toolkit's NVRTC (libnvrtc.so.12) to compile kernels at run time.");
    }

    private static unsafe string ReadLog(nint program)
    {
        if (NvrtcNative.nvrtcGetProgramLogSize(program, out var size) != 0 || size <= 1)
            return "";
        var log = new byte[(int)size];
        fixed (byte* p = log)
            NvrtcNative.nvrtcGetProgramLog(program, p);
        return Encoding.UTF8.GetString(log, 0, log.Length - 1).Trim();
    }

    private static string ErrorString(int result) => Marshal.PtrToStringUTF8(NvrtcNative.nvrtcGetErrorString(result)) ?? $"NVRTC error {result}";

    private static void Check(int result, string call)
    {
        if (result != 0)
            throw new CudaException(call, result, $"{call} failed: {ErrorString(result)} ({result}).");
    }
}

/// <summary>A kernel source did not compile; <see cref="Log"/> has NVRTC's messages.</summary>
public sealed class NvrtcCompileException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public NvrtcCompileException(string programName, string error, string log)
        : base($"NVRTC could not compile '{programName}': {error}.{(log.Length > 0 ? Environment.NewLine + log : "")}")
    {
        ProgramName = programName;
        Log = log;
    }

    /// <summary>The program name given to the compiler.</summary>
    public string ProgramName { get; }

    /// <summary>NVRTC's compile log.</summary>
    public string Log { get; }
}
