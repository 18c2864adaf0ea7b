namespace Serve.Onnx.Tests;

/// <summary>How a replica's resources become session options; checked without a GPU (the CUDA provider itself is only appended on one).</summary>
public class OnnxSessionPlanTests
{
    private static ReplicaGpu Share(int ordinal, double fraction, long deviceMemory) =>
        new(new GpuAssignment("app", "Embedder", "Embedder#0001", [new GpuDevice(ordinal, "Test GPU", deviceMemory)], fraction));

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 4)]
    [InlineData(0, 1)] // never below one thread
    public void A_cpu_replica_gets_its_cpu_threads_as_intra_op_threads_and_one_inter_op_thread(int cpuThreads, int intraOp)
    {
        var plan = OnnxSessionPlan.For(cpuThreads, gpu: null, userStream: 0);

        Assert.Equal(intraOp, plan.IntraOpThreads);
        Assert.Equal(1, plan.InterOpThreads);
        Assert.Null(plan.CudaOptions);
    }

    [Fact]
    public void A_gpu_share_sets_the_device_the_memory_limit_and_the_replicas_stream()
    {
        var plan = OnnxSessionPlan.For(2, Share(ordinal: 1, fraction: 0.5, deviceMemory: 16L << 30), userStream: 0x7f00_1234);

        var cuda = Assert.IsAssignableFrom<IReadOnlyDictionary<string, string>>(plan.CudaOptions);
        Assert.Equal("1", cuda["device_id"]);
        Assert.Equal((8L << 30).ToString(), cuda["gpu_mem_limit"]);
        Assert.Equal("1", cuda["has_user_compute_stream"]);
        Assert.Equal(0x7f00_1234L.ToString(), cuda["user_compute_stream"]);
        Assert.Equal("kSameAsRequested", cuda["arena_extend_strategy"]);
        Assert.Equal(2, plan.IntraOpThreads);
    }

    [Fact]
    public void A_logical_gpu_without_a_stream_still_gets_its_device_and_memory_limit()
    {
        var plan = OnnxSessionPlan.For(1, Share(ordinal: 0, fraction: 0.25, deviceMemory: 8L << 30), userStream: 0);

        var cuda = plan.CudaOptions!;
        Assert.Equal("0", cuda["device_id"]);
        Assert.Equal((2L << 30).ToString(), cuda["gpu_mem_limit"]);
        Assert.False(cuda.ContainsKey("user_compute_stream"));
    }
}
