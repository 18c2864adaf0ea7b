using System.Reflection;
using System.Runtime.InteropServices;

namespace Serve.Cuda.Native;

/// <summary>
/// Loads libcuda.so.1 (and on demand libnvrtc.so.12) with <see cref="NativeLibrary.TryLoad(string, out nint)"/> the
/// first time anything asks, and resolves the <c>[LibraryImport]</c> declarations to those handles. A machine
/// without the driver gets a reason, never a <see cref="DllNotFoundException"/> at an unexpected place.
/// </summary>
internal static class CudaNative
{
    public const string Driver = "libcuda.so.1";
    public const string Nvrtc = "libnvrtc.so.12";

    private static readonly string[] s_driverNames = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : [Driver, "libcuda.so"];
    private static readonly string[] s_nvrtcNames = OperatingSystem.IsWindows()
        ? ["nvrtc64_120_0.dll", "nvrtc64_12.dll"]
        : [Nvrtc, "libnvrtc.so"];

    private static readonly object s_lock = new();
    private static nint s_driver;
    private static nint s_nvrtc;
    private static string? s_driverError;
    private static string? s_nvrtcError;
    private static bool s_driverTried;
    private static bool s_nvrtcTried;
    private static bool s_resolverSet;

    /// <summary>Loads the driver library and runs <c>cuInit</c> once; false with the reason when it cannot.</summary>
    public static bool TryLoadDriver(out string? reason)
    {
        lock (s_lock)
        {
            if (!s_driverTried)
            {
                s_driverTried = true;
                s_driver = TryLoadAny(s_driverNames, out s_driverError);
                if (s_driver != 0)
                {
                    EnsureResolver();
                    var status = CudaDriver.cuInit(0);
                    if (status != CudaStatus.Success)
                    {
                        s_driverError = $"the CUDA driver ({Driver}) loaded but cuInit failed with {CudaException.Describe(status)}; check that a GPU is visible to this process (nvidia-smi)";
                        s_driver = 0;
                    }
                }
            }
            reason = s_driverError;
            return s_driver != 0;
        }
    }

    /// <summary>Loads NVRTC once; false with the reason when it cannot.</summary>
    public static bool TryLoadNvrtc(out string? reason)
    {
        lock (s_lock)
        {
            if (!s_nvrtcTried)
            {
                s_nvrtcTried = true;
                s_nvrtc = TryLoadAny(s_nvrtcNames, out s_nvrtcError);
                if (s_nvrtc != 0)
                    EnsureResolver();
            }
            reason = s_nvrtcError;
            return s_nvrtc != 0;
        }
    }

    private static nint TryLoadAny(string[] names, out string? error)
    {
        foreach (var name in names)
        {
            if (NativeLibrary.TryLoad(name, typeof(CudaNative).Assembly, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out var handle)
                || NativeLibrary.TryLoad(name, out handle))
            {
                error = null;
                return handle;
            }
        }
        error = $"{names[0]} could not be loaded (tried {string.Join(", ", names)}): no NVIDIA driver/toolkit on this machine or not on the library path";
        return 0;
    }

    private static void EnsureResolver()
    {
        if (s_resolverSet)
            return;
        s_resolverSet = true;
        NativeLibrary.SetDllImportResolver(typeof(CudaNative).Assembly, Resolve);
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) => libraryName switch
    {
        Driver => Volatile.Read(ref s_driver),
        Nvrtc => Volatile.Read(ref s_nvrtc),
        _ => 0,
    };
}
