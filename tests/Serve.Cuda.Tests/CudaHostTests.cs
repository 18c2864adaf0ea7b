namespace Serve.Cuda.Tests;

/// <summary>Serve hosts with CUDA turned on: real devices where there are some, the no-driver path where there are none.</summary>
public class CudaHostTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [NoCudaFact]
    public async Task Without_a_driver_the_host_has_no_GPU_and_a_GPU_deployment_is_unschedulable_not_a_crash()
    {
        Assert.Equal(0, CudaDevices.DeviceCount);
        Assert.NotNull(CudaDevices.UnavailableReason);
        Assert.Empty(CudaGpuRuntime.Shared.DiscoverDevices());
        Assert.Throws<InvalidOperationException>(CudaDevices.EnsureAvailable);

        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.UseCuda(); }).WaitAsync(Bound);
        var e = await Assert.ThrowsAsync<UnschedulableException>(() => serve.RunAsync(GpuProbe.Bind(new GpuSightings())).WaitAsync(Bound));
        Assert.Contains("needs 0.5 GPU, but the host has no GPU", e.Message);
        Assert.Equal("cpu", await (await serve.RunAsync(CpuOnly.Bind(), new RunOptions { Name = "cpu" }).WaitAsync(Bound)).CallAsync());
    }

    [Fact]
    public async Task A_logical_GPU_has_no_CUDA_share_and_context_Cuda_says_what_to_do()
    {
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.Resources.UseLogicalGpus(1, 1L << 30); }).WaitAsync(Bound);
        var probe = await serve.RunAsync(GpuProbe.Bind(new GpuSightings())).WaitAsync(Bound);
        var message = await probe.LogicalCudaAsync();
        Assert.Contains("holds gpu0 × 0.5 (logical GPU 0, budget 536870912 bytes), a logical GPU without CUDA: start the host with AddCuda() / o.UseCuda() so that GPU replicas get a CUDA stream and allocator.", message);
    }

    [Fact]
    public async Task AddCuda_registers_the_runtime_for_the_generic_host()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddServe(o => o.Http.Enabled = false).AddCuda();
        await using var provider = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        var host = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ServeHost>(provider);
        Assert.Same(CudaGpuRuntime.Shared, host.Options.Resources.GpuRuntime);
        await host.ShutdownAsync().WaitAsync(Bound);
    }

    [GpuFact(needsNvrtc: true)]
    [Trait("Category", "Gpu")]
    public async Task Two_half_GPU_replicas_share_a_device_each_with_its_own_stream_budget_and_kernel()
    {
        var sightings = new GpuSightings();
        var device = CudaDevices.GetDevice(0);
        await using var serve = await ServeHost.StartAsync(o => { o.Http.Enabled = false; o.UseCuda(); }).WaitAsync(Bound);
        var probe = await serve.RunAsync(GpuProbe.Bind(sightings).WithOptions(o => { o.NumReplicas = 2; o.MaxOngoingRequests = 1; })).WaitAsync(Bound);

        var gpus = sightings.Gpus.Cast<CudaReplicaGpu>().ToArray();
        Assert.Equal(2, gpus.Length);
        Assert.All(gpus, g => Assert.Equal((0, 0.5, device.TotalMemoryBytes / 2), (g.Ordinal, g.Fraction, g.MemoryBudgetBytes)));
        Assert.NotEqual(gpus[0].Stream.Handle, gpus[1].Stream.Handle);

        Assert.Equal(device.TotalMemoryBytes / 2 + 1, await probe.OverBudgetAsync());
        var a = Enumerable.Range(0, 4096).Select(i => (float)i).ToArray();
        var sums = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => probe.AddAsync(a, a).AsTask())).WaitAsync(Bound);
        Assert.All(sums, c => Assert.Equal(a.Select(x => 2 * x), c));

        await serve.DeleteAsync("default").WaitAsync(Bound);
        Assert.All(gpus, g => Assert.True(g.Stream.IsDisposed, "the replica's stream is released when it stops"));
        Assert.All(gpus, g => Assert.Equal(0, g.Memory.UsedBytes));
    }
}
