namespace Serve.Cuda.Tests;

/// <summary>The allocator's budget accounting, against a fake device memory (no GPU needed).</summary>
public class GpuAllocatorTests
{
    private const long MiB = 1L << 20;

    private sealed class FakeMemory : IDeviceMemory
    {
        private ulong _next = 0x1000;
        public HashSet<ulong> Live { get; } = [];
        public bool FailNext { get; set; }

        public ulong Allocate(long bytes)
        {
            if (FailNext)
            {
                FailNext = false;
                throw new CudaException("cuMemAlloc", 2, "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (2).");
            }
            var p = _next;
            _next += (ulong)bytes;
            Live.Add(p);
            return p;
        }

        public void Free(ulong pointer) => Assert.True(Live.Remove(pointer), $"freed {pointer:x} twice or never allocated");
    }

    [Fact]
    public void Allocations_count_against_the_budget_and_beyond_it_throw_naming_replica_budget_and_request()
    {
        var memory = new FakeMemory();
        using var allocator = new GpuAllocator("Model#0001", 0, 512 * MiB, memory);
        using var a = allocator.Allocate(300 * MiB);
        Assert.Equal(300 * MiB, allocator.UsedBytes);
        Assert.Equal(212 * MiB, allocator.AvailableBytes);

        var e = Assert.Throws<GpuMemoryBudgetException>(() => allocator.Allocate(300 * MiB));
        Assert.Equal("Model#0001", e.ReplicaId);
        Assert.Equal((512 * MiB, 300 * MiB, 300 * MiB), (e.BudgetBytes, e.UsedBytes, e.RequestedBytes));
        Assert.Equal(
            "Replica 'Model#0001' asked for 300 MiB (314572800 bytes) of GPU memory on gpu0, but its budget is 512 MiB (536870912 bytes) " +
            "(its NumGpus fraction of the device) and 300 MiB (314572800 bytes) is already allocated. Free buffers you no longer need, " +
            "allocate less (e.g. a smaller batch), or raise the deployment's NumGpus.", e.Message);
        Assert.Single(memory.Live); // the refused allocation never reached the device
    }

    [Fact]
    public void Freeing_gives_the_bytes_back_once()
    {
        var memory = new FakeMemory();
        using var allocator = new GpuAllocator("M#1", 1, 100, memory);
        var a = allocator.Allocate(60);
        a.Dispose();
        a.Dispose();
        Assert.Equal(0, allocator.UsedBytes);
        Assert.Empty(memory.Live);
        using var b = allocator.Allocate(100); // the whole budget is available again
        Assert.True(a.IsDisposed);
    }

    [Fact]
    public void A_driver_failure_leaves_the_budget_untouched()
    {
        var memory = new FakeMemory { FailNext = true };
        using var allocator = new GpuAllocator("M#1", 0, 100, memory);
        Assert.Throws<CudaException>(() => allocator.Allocate(10));
        Assert.Equal(0, allocator.UsedBytes);
    }

    [Fact]
    public void Disposing_the_allocator_frees_every_live_buffer_and_refuses_new_ones()
    {
        var memory = new FakeMemory();
        var allocator = new GpuAllocator("M#1", 0, 1000, memory);
        var a = allocator.Allocate<float>(10);
        var b = allocator.Allocate(100);
        Assert.Equal(140, allocator.UsedBytes);
        allocator.Dispose();
        Assert.Empty(memory.Live);
        Assert.True(a.IsDisposed && b.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => allocator.Allocate(1));
    }

    [Fact]
    public void Concurrent_allocations_never_exceed_the_budget()
    {
        var memory = new FakeMemory();
        using var allocator = new GpuAllocator("M#1", 0, 1000, memory);
        var granted = 0;
        Parallel.For(0, 200, _ =>
        {
            try
            {
                allocator.Allocate(10);
                Interlocked.Increment(ref granted);
            }
            catch (GpuMemoryBudgetException)
            {
            }
        });
        Assert.Equal(100, granted);
        Assert.Equal(1000, allocator.UsedBytes);
    }

    [Fact]
    public void Kernel_arguments_pack_into_the_low_bytes_of_their_slot()
    {
        Assert.Equal(0xFFFF_FFFFUL, ((KernelArg)(-1)).Bits);
        Assert.Equal(BitConverter.SingleToUInt32Bits(1.5f), ((KernelArg)1.5f).Bits);
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, ((KernelArg)0x1234_5678_9ABC_DEF0UL).Bits);
        Assert.Equal("GPU-00112233-4455-6677-8899-aabbccddeeff", CudaDevices.FormatUuid(Convert.FromHexString("00112233445566778899AABBCCDDEEFF")));
    }
}
