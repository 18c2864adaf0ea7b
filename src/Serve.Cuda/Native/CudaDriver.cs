using System.Runtime.InteropServices;

namespace Serve.Cuda.Native;

/// <summary>CUresult values Serve names in messages; any other value is reported by number and cuGetErrorName.</summary>
internal enum CudaStatus
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    NoDevice = 100,
    InvalidDevice = 101,
}

/// <summary>
/// The CUDA driver API calls Serve uses, nothing more (<c>cuda.h</c>, versioned <c>_v2</c> entry points where the
/// header maps to them). Call only after <see cref="CudaNative.TryLoadDriver"/> returned true.
/// </summary>
internal static unsafe partial class CudaDriver
{
    public const int AttributeMultiprocessorCount = 16;
    public const int AttributeComputeCapabilityMajor = 75;
    public const int AttributeComputeCapabilityMinor = 76;
    public const uint StreamNonBlocking = 1;

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuInit(uint flags);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDriverGetVersion(out int version);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuGetErrorName(CudaStatus error, out nint name);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuGetErrorString(CudaStatus error, out nint text);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDeviceGetCount(out int count);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDeviceGet(out int device, int ordinal);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDeviceGetName(byte* name, int length, int device);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDeviceGetUuid(byte* uuid16, int device);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuDeviceTotalMem_v2")]
    public static partial CudaStatus cuDeviceTotalMem(out nuint bytes, int device);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDeviceGetAttribute(out int value, int attribute, int device);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuDevicePrimaryCtxRetain(out nint context, int device);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    public static partial CudaStatus cuDevicePrimaryCtxRelease(int device);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuCtxSetCurrent(nint context);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuCtxSynchronize();

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuCtxGetStreamPriorityRange(out int leastPriority, out int greatestPriority);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuMemGetInfo_v2")]
    public static partial CudaStatus cuMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuStreamCreateWithPriority(out nint stream, uint flags, int priority);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuStreamDestroy_v2")]
    public static partial CudaStatus cuStreamDestroy(nint stream);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuStreamSynchronize(nint stream);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuStreamGetPriority(nint stream, out int priority);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuMemAlloc_v2")]
    public static partial CudaStatus cuMemAlloc(out ulong devicePointer, nuint bytes);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuMemFree_v2")]
    public static partial CudaStatus cuMemFree(ulong devicePointer);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    public static partial CudaStatus cuMemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream);

    [LibraryImport(CudaNative.Driver, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    public static partial CudaStatus cuMemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuModuleLoadData(out nint module, void* image);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuModuleUnload(nint module);

    [LibraryImport(CudaNative.Driver, StringMarshalling = StringMarshalling.Utf8)]
    public static partial CudaStatus cuModuleGetFunction(out nint function, nint module, string name);

    [LibraryImport(CudaNative.Driver)]
    public static partial CudaStatus cuLaunchKernel(
        nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** parameters, void** extra);
}

/// <summary>The NVRTC calls Serve uses (<c>nvrtc.h</c>). Call only after <see cref="CudaNative.TryLoadNvrtc"/> returned true.</summary>
internal static unsafe partial class NvrtcNative
{
    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcVersion(out int major, out int minor);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial nint nvrtcGetErrorString(int result);

    [LibraryImport(CudaNative.Nvrtc, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int nvrtcCreateProgram(out nint program, string source, string name, int headerCount, nint headers, nint includeNames);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcCompileProgram(nint program, int optionCount, byte** options);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcGetProgramLogSize(nint program, out nuint size);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcGetProgramLog(nint program, byte* log);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcGetPTXSize(nint program, out nuint size);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcGetPTX(nint program, byte* ptx);

    [LibraryImport(CudaNative.Nvrtc)]
    public static partial int nvrtcDestroyProgram(ref nint program);
}
