using Serve.Scheduling;

namespace Serve.Tests;

/// <summary>Placement logic against logical GPU inventories, without a host.</summary>
public class ResourcePoolTests
{
    private const long GiB = 1L << 30;

    private static ResourcePool Pool(double cpus = 8, int gpus = 2, params (string Name, double Amount)[] custom) =>
        new(cpus, Enumerable.Range(0, gpus).Select(i => new GpuDevice(i, $"gpu {i}", 16 * GiB)), custom.Select(c => KeyValuePair.Create(c.Name, c.Amount)), "no GPU runtime");

    private static ResourceRequest Request(double cpus = 0, double gpus = 0, params (string Name, double Amount)[] custom)
    {
        var options = new DeploymentOptions { NumCpus = cpus, NumGpus = gpus };
        foreach (var (name, amount) in custom)
            options.Resources[name] = amount;
        return ResourceRequest.From(options);
    }

    private static Reservation Reserve(ResourcePool pool, ResourceRequest request)
    {
        Assert.True(pool.TryReserve(request, out var reservation, out var why), why);
        return reservation;
    }

    [Fact]
    public void Fractions_pack_best_fit_onto_one_device_and_never_span_two()
    {
        var pool = Pool();
        Assert.Equal([0], Reserve(pool, Request(gpus: 0.5)).GpuIndexes);
        Assert.Equal([0], Reserve(pool, Request(gpus: 0.3)).GpuIndexes);   // gpu0 (0.5 free) fits tighter than gpu1 (1 free)
        Assert.Equal([1], Reserve(pool, Request(gpus: 0.5)).GpuIndexes);   // 0.2 left on gpu0 is too little
        Assert.Equal([0], Reserve(pool, Request(gpus: 0.2)).GpuIndexes);   // exactly the 0.2 left on gpu0
        Assert.Equal([0, 0.5], pool.GpuFree());

        // 0.5 + 0.5 free in total, but on two devices: a replica never spans them.
        Assert.False(pool.TryReserve(Request(gpus: 0.6), out _, out var why));
        Assert.Equal("Unschedulable: needs 0.6 GPU, 0 free on gpu0, 0.5 free on gpu1", why);
    }

    [Fact]
    public void Thirds_and_tenths_add_up_without_floating_point_drift()
    {
        var pool = Pool(gpus: 1);
        for (var i = 0; i < 10; i++)
            Reserve(pool, Request(gpus: 0.1));
        Assert.False(pool.TryReserve(Request(gpus: 0.1), out _, out _));

        var thirds = Pool(gpus: 1);
        for (var i = 0; i < 3; i++)
            Reserve(thirds, Request(gpus: 1.0 / 3));
        Assert.False(thirds.TryReserve(Request(gpus: 0.01), out _, out _));
    }

    [Fact]
    public void Whole_GPUs_above_one_take_that_many_free_devices()
    {
        var pool = Pool(gpus: 3);
        var shared = Reserve(pool, Request(gpus: 0.25));                    // gpu0
        Assert.Equal([1, 2], Reserve(pool, Request(gpus: 2)).GpuIndexes);  // the two untouched devices
        Assert.False(pool.TryReserve(Request(gpus: 2), out _, out var why));
        Assert.StartsWith("Unschedulable: needs 2 whole GPUs, 0.75 free on gpu0, 0 free on gpu1, 0 free on gpu2", why);

        pool.Release(shared);
        Assert.Equal([1, 0, 0], pool.GpuFree());
    }

    [Fact]
    public void Release_gives_everything_back_once()
    {
        var pool = Pool(cpus: 2, custom: ("accelerator", 1));
        var r = Reserve(pool, Request(cpus: 2, gpus: 1, ("accelerator", 1)));
        Assert.False(pool.TryReserve(Request(cpus: 1), out _, out _));
        pool.Release(r);
        pool.Release(r); // a second release must not free resources someone else holds
        Assert.Equal(2, pool.CpuFree);
        Assert.Equal(1, pool.CustomFree("accelerator"));
        Reserve(pool, Request(cpus: 2, gpus: 1, ("accelerator", 1)));
        Assert.Equal(0, pool.CpuFree);
    }

    [Fact]
    public void Custom_resources_are_reserved_by_name_and_unknown_names_are_explained()
    {
        var pool = Pool(custom: ("accelerator", 2));
        Reserve(pool, Request(custom: ("accelerator", 1.5)));
        Assert.False(pool.TryReserve(Request(custom: ("accelerator", 1)), out _, out var why));
        Assert.Equal("Unschedulable: needs 1 \"accelerator\", 0.5 of 2 free", why);

        Assert.False(pool.TryReserve(Request(custom: ("tpu", 1)), out _, out why));
        Assert.Contains("needs 1 \"tpu\", but the host has no resource \"tpu\" (set ServeOptions.Resources.Custom[\"tpu\"])", why);
    }

    [Fact]
    public void CPUs_and_every_missing_resource_are_named_together()
    {
        var pool = Pool(cpus: 1, gpus: 0);
        Assert.False(pool.TryReserve(Request(cpus: 2, gpus: 0.5), out _, out var why));
        Assert.Equal("Unschedulable: needs 2 CPU, 1 of 1 free; needs 0.5 GPU, but the host has no GPU (no GPU runtime)", why);
    }

    [Fact]
    public void WhyNeverFits_places_a_whole_application_on_an_empty_pool()
    {
        var pool = Pool(cpus: 4, gpus: 1);
        Reserve(pool, Request(cpus: 4, gpus: 1)); // what runs now does not matter: it could be deleted

        Assert.Null(pool.WhyNeverFits([("A", Request(cpus: 1, gpus: 0.5), 2), ("B", Request(cpus: 2), 1)]));

        var miss = pool.WhyNeverFits([("A", Request(cpus: 1, gpus: 0.5), 3)]);
        Assert.NotNull(miss);
        Assert.Equal("A", miss.Value.Deployment);
        Assert.Equal((3, 3), (miss.Value.Replica, miss.Value.Of));
        Assert.Equal("Unschedulable: needs 0.5 GPU, 0 free on gpu0", miss.Value.Why);
    }

    [Fact]
    public void FitsAfterReleasing_answers_without_changing_the_pool()
    {
        var pool = Pool(cpus: 2, gpus: 0);
        var a = Reserve(pool, Request(cpus: 1));
        Reserve(pool, Request(cpus: 1));
        Assert.True(pool.FitsAfterReleasing(Request(cpus: 1), a));
        Assert.False(pool.FitsAfterReleasing(Request(cpus: 2), a));
        Assert.Equal(0, pool.CpuFree);
        Assert.False(a.Released);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0.5, 1)]
    [InlineData(1, 1)]
    [InlineData(2.5, 3)]
    [InlineData(4, 4)]
    public void A_replica_gets_its_NumCpus_rounded_up_as_threads(double numCpus, int threads) =>
        Assert.Equal(threads, CpuLimiter.ThreadsFor(numCpus));

    [Fact]
    public void SERVE_NUM_CPUS_overrides_the_default_pool_and_is_ignored_when_not_a_number()
    {
        Assert.Equal(12.5, ResourceOptions.DefaultCpus("12.5"));
        Assert.Equal(Environment.ProcessorCount, ResourceOptions.DefaultCpus(null));
        Assert.Equal(Environment.ProcessorCount, ResourceOptions.DefaultCpus("many"));
        Assert.Equal(Environment.ProcessorCount, ResourceOptions.DefaultCpus("-1"));
    }

    [Fact]
    public void Invalid_host_resources_are_refused_naming_the_option()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ServeHost(new ServeOptions { Http = { Enabled = false }, Resources = { Cpus = -1 } }));
        Assert.Contains("ServeOptions.Resources.Cpus = -1", e.Message);
        var options = new ServeOptions { Http = { Enabled = false } };
        options.Resources.Gpus = [new GpuDevice(0, "a", 1), new GpuDevice(0, "b", 1)];
        var dup = Assert.Throws<ArgumentException>(() => new ServeHost(options));
        Assert.Contains("ordinal 0", dup.Message);
    }
}
