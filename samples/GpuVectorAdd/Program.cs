using GpuVectorAdd;
using Serve;
using Serve.Cuda;

// Two replicas share one GPU (NumGpus = 0.5 each), each with its own CUDA stream and half the device memory.
// Without a GPU this program says so, shows what Serve answers to a GPU deployment, and exits 0.
var gpuReady = CudaDevices.DeviceCount > 0 && Nvrtc.IsAvailable;
if (!gpuReady)
{
    Console.WriteLine("No GPU available: " + (CudaDevices.UnavailableReason ?? (CudaDevices.DeviceCount == 0 ? "the CUDA driver reports no device" : Nvrtc.UnavailableReason)));
    Console.WriteLine("This sample needs an NVIDIA GPU with its driver (libcuda.so.1) and NVRTC (libnvrtc.so.12).");
}

await using var serve = await ServeHost.StartAsync(o =>
{
    o.Http.Enabled = false;
    o.UseCuda(); // the GPU pool is what the driver discovers: none on this machine if the lines above said so
});

VectorAddHandle add;
try
{
    add = await serve.RunAsync(VectorAdd.Bind());
}
catch (UnschedulableException e)
{
    Console.WriteLine($"Serve refused the GPU deployment, as it should without a GPU:{Environment.NewLine}  {e.Message}");
    return 0;
}

var where = new HashSet<string>();
for (var i = 0; i < 20 && where.Count < 2; i++)
    where.Add(await add.WhereAsync());
foreach (var w in where.Order())
    Console.WriteLine(w);

const int batch = 64, length = 100_000;
var a = new float[batch * length];
var b = new float[batch * length];
for (var k = 0; k < a.Length; k++)
{
    a[k] = k % 1000;
    b[k] = 0.5f * (k % 7);
}
// Four concurrent calls: the router spreads them over both replicas, whose streams run side by side.
var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () => await add.CallAsync(a, b))));
foreach (var c in results)
{
    for (var k = 0; k < c.Length; k++)
    {
        if (c[k] != a[k] + b[k])
        {
            Console.WriteLine($"Wrong sum at {k}: {c[k]} instead of {a[k] + b[k]}");
            return 1;
        }
    }
}
Console.WriteLine($"4 calls × {batch} vectors × {length} floats added on the GPU; every element checked.");
return 0;
