using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Serve.Benchmarks;

/// <summary>
/// The cost of calling a deployment through a Serve handle, side by side with a direct call to the same class
/// (the baseline of each category) and with a hand-written <see cref="ChannelWorkerPool"/>:
/// <list type="bullet">
/// <item>1-Sync: one caller, one replica (one pool worker), a synchronous method; one call per operation.</item>
/// <item>2-Async: one caller, one replica (one pool worker), a method that really awaits; the caller awaits
/// <see cref="SequentialCalls"/> calls in a row and the reported time is per call.</item>
/// <item>3-64x4-Sync / 4-64x4-Async: 64 concurrent callers × <see cref="CallsPerCaller"/> calls over 4 replicas
/// (4 pool workers); the reported time is per call (OperationsPerInvoke), Op/s is calls per second.</item>
/// <item>5-RunAsync: deploying a 10-replica application on a fresh host (host start and shutdown are not measured).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class HandleBenchmarks
{
    public const int Callers = 64;
    public const int CallsPerCaller = 200;
    public const int ConcurrentCalls = Callers * CallsPerCaller;
    public const int Argument = 41;
    public const int SequentialCalls = 100;
    public const long SequentialSum = (long)SequentialCalls * (SequentialCalls + 1) / 2;

    /// <summary>Σ over 64 callers of Σ_{i&lt;K} (i + 1).</summary>
    public const long ConcurrentSum = (long)Callers * CallsPerCaller * (CallsPerCaller + 1) / 2;

    public const string Sync = "1-Sync";
    public const string Async = "2-Async";
    public const string ConcurrentSync = "3-64x4-Sync";
    public const string ConcurrentAsync = "4-64x4-Async";
    public const string Deploy = "5-RunAsync";

    public const int DeployReplicas = 10;

    private Adder _adder = null!;
    private ServeHost _host = null!;
    private AdderHandle _one = null!;
    private AdderHandle _four = null!;
    private ServeHost _metricsHost = null!;
    private AdderHandle _metered = null!;
    private AdderHandle _oneCpuLimited = null!;
    private AdderHandle _fourCpuLimited = null!;
    private ChannelWorkerPool _pool1 = null!;
    private ChannelWorkerPool _pool4 = null!;
    private ServeHost? _deployHost;
    private int _argument = Argument;
    private readonly CancellationTokenSource _callerToken = new();

    /// <summary>
    /// A short job (3 warm-up and 8 measured iterations) in two processes. On the shared 2-core VM, benchmarks that
    /// run on the thread pool (all but 1-Sync) have bursts, seconds long, in which they run up to ~3x slower, inside
    /// one process and across processes; two processes and the Min and Median columns keep one burst from deciding
    /// the result.
    /// </summary>
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithLaunchCount(2).WithWarmupCount(3).WithIterationCount(8).WithId("Short"));
            AddColumn(StatisticColumn.Min, StatisticColumn.Median, StatisticColumn.OperationsPerSecond);
        }
    }

    [GlobalSetup]
    public void GlobalSetup() => GlobalSetupAsync().GetAwaiter().GetResult();

    private async Task GlobalSetupAsync()
    {
        _adder = new Adder();
        _host = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        _one = await _host.RunAsync(Adder.Bind(), new RunOptions { Name = "one", RoutePrefix = "/one" });
        _four = await _host.RunAsync(Adder.Bind().WithOptions(o => o.NumReplicas = 4), new RunOptions { Name = "four", RoutePrefix = "/four" });
        // A second host with the admin API on: its /metrics exporter listens to the host's meter, so every call
        // records request count, latency and errors (the cost of metrics when someone is collecting them).
        _metricsHost = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Port = 0;
        });
        _metered = await _metricsHost.RunAsync(Adder.Bind(), new RunOptions { Name = "metered" });
        // NumCpus = 0.2: a CPU limiter of one thread per replica (the cost of asking for CPUs), side by side with the
        // default NumCpus = 0 (no limiter). 0.2 CPU each, so all five replicas fit on a one-core machine.
        _oneCpuLimited = await _host.RunAsync(Adder.Bind().WithOptions(o => { o.Name = "AdderCpuLimit"; o.NumCpus = 0.2; }), new RunOptions { Name = "one-limited", RoutePrefix = "/one-limited" });
        _fourCpuLimited = await _host.RunAsync(Adder.Bind().WithOptions(o => { o.Name = "AdderCpuLimit"; o.NumCpus = 0.2; o.NumReplicas = 4; }), new RunOptions { Name = "four-limited", RoutePrefix = "/four-limited" });
        _pool1 = new ChannelWorkerPool(workers: 1, capacity: 64);
        _pool4 = new ChannelWorkerPool(workers: 4, capacity: 4 * 64);

        // Fail here, in every benchmark process, rather than measure something that does not work.
        Check("one: running replicas", RunningReplicas(_host, "one"), 1);
        Check("four: running replicas", RunningReplicas(_host, "four"), 4);
        Check("handle(1).CallAsync", await _one.CallAsync(Argument), Argument + 1);
        Check("metered handle(1).CallAsync", await _metered.CallAsync(Argument), Argument + 1);
        Check("handle(1).AddAsync", await _one.AddAsync(Argument), Argument + 1);
        Check("handle(4).CallAsync", await _four.CallAsync(Argument), Argument + 1);
        Check("handle(4).AddAsync", await _four.AddAsync(Argument), Argument + 1);
        Check("handle(1, NumCpus = 0.2).CallAsync", await _oneCpuLimited.CallAsync(Argument), Argument + 1);
        Check("handle(4, NumCpus = 0.2).CallAsync", await _fourCpuLimited.CallAsync(Argument), Argument + 1);
        Check("pool(1).CallAsync", await _pool1.CallAsync(Argument), Argument + 1);
        Check("pool(1).AddAsync", await _pool1.AddAsync(Argument), Argument + 1);
        Check("pool(4).CallAsync", await _pool4.CallAsync(Argument), Argument + 1);
        Check("pool(4).AddAsync", await _pool4.AddAsync(Argument), Argument + 1);
    }

    [GlobalCleanup]
    public void GlobalCleanup() => GlobalCleanupAsync().GetAwaiter().GetResult();

    private async Task GlobalCleanupAsync()
    {
        await _pool1.DisposeAsync();
        await _pool4.DisposeAsync();
        await _host.ShutdownAsync();
        await _metricsHost.ShutdownAsync();
    }

    // ---- 1. one caller, one replica, synchronous method ----------------------------------------------------

    [Benchmark(Baseline = true), BenchmarkCategory(Sync), ExpectedResult(Argument + 1)]
    public int Direct_Call() => _adder.Call(_argument);

    [Benchmark, BenchmarkCategory(Sync), ExpectedResult(Argument + 1)]
    public ValueTask<int> Handle_CallAsync() => _one.CallAsync(_argument);

    // A caller token that can be cancelled (never is): the method's token links it with the replica's stop token.
    [Benchmark, BenchmarkCategory(Sync), ExpectedResult(Argument + 1)]
    public ValueTask<int> Handle_CallAsync_WithToken() => _one.CallAsync(_argument, _callerToken.Token);

    [Benchmark, BenchmarkCategory(Sync), ExpectedResult(Argument + 1)]
    public ValueTask<int> Handle_CallAsync_MetricsExported() => _metered.CallAsync(_argument);

    [Benchmark, BenchmarkCategory(Sync), ExpectedResult(Argument + 1)]
    public ValueTask<int> Handle_CpuLimit_CallAsync() => _oneCpuLimited.CallAsync(_argument);

    [Benchmark, BenchmarkCategory(Sync), ExpectedResult(Argument + 1)]
    public Task<int> ChannelPool_Call() => _pool1.CallAsync(_argument);

    // ---- 2. one caller, one replica, asynchronous method (await Task.Yield()); time per call ----------------
    // One caller awaits SequentialCalls calls one after another, so BenchmarkDotNet's blocking wait for the
    // returned task (a thread wake-up, which on this VM costs more than the call and varies more) is paid once per
    // 100 calls instead of once per call.

    [Benchmark(Baseline = true, OperationsPerInvoke = SequentialCalls), BenchmarkCategory(Async), ExpectedResult(SequentialSum)]
    public Task<long> Direct_AddAsync() => CallerAsync(new DirectAddAsync(_adder), SequentialCalls);

    [Benchmark(OperationsPerInvoke = SequentialCalls), BenchmarkCategory(Async), ExpectedResult(SequentialSum)]
    public Task<long> Handle_AddAsync() => CallerAsync(new HandleAddAsync(_one), SequentialCalls);

    [Benchmark(OperationsPerInvoke = SequentialCalls), BenchmarkCategory(Async), ExpectedResult(SequentialSum)]
    public Task<long> ChannelPool_AddAsync() => CallerAsync(new PoolAddAsync(_pool1), SequentialCalls);

    // ---- 3. 64 callers over 4 replicas / 4 workers, synchronous method; time per call ----------------------

    [Benchmark(Baseline = true, OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentSync), ExpectedResult(ConcurrentSum)]
    public Task<long> Direct_64Callers_Call() => RunCallers(new DirectCall(_adder));

    [Benchmark(OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentSync), ExpectedResult(ConcurrentSum)]
    public Task<long> Handle_64Callers_4Replicas_CallAsync() => RunCallers(new HandleCall(_four));

    [Benchmark(OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentSync), ExpectedResult(ConcurrentSum)]
    public Task<long> Handle_64Callers_4Replicas_CpuLimit_CallAsync() => RunCallers(new HandleCall(_fourCpuLimited));

    [Benchmark(OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentSync), ExpectedResult(ConcurrentSum)]
    public Task<long> ChannelPool_64Callers_4Workers_Call() => RunCallers(new PoolCall(_pool4));

    // ---- 4. 64 callers over 4 replicas / 4 workers, asynchronous method; time per call ---------------------

    [Benchmark(Baseline = true, OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentAsync), ExpectedResult(ConcurrentSum)]
    public Task<long> Direct_64Callers_AddAsync() => RunCallers(new DirectAddAsync(_adder));

    [Benchmark(OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentAsync), ExpectedResult(ConcurrentSum)]
    public Task<long> Handle_64Callers_4Replicas_AddAsync() => RunCallers(new HandleAddAsync(_four));

    [Benchmark(OperationsPerInvoke = ConcurrentCalls), BenchmarkCategory(ConcurrentAsync), ExpectedResult(ConcurrentSum)]
    public Task<long> ChannelPool_64Callers_4Workers_AddAsync() => RunCallers(new PoolAddAsync(_pool4));

    // ---- 5. RunAsync of a 10-replica deployment on a fresh host --------------------------------------------

    [IterationSetup(Target = nameof(RunAsync_10Replicas))]
    public void StartDeployHost() => _deployHost = ServeHost.StartAsync(o => o.Http.Enabled = false).GetAwaiter().GetResult();

    [IterationCleanup(Target = nameof(RunAsync_10Replicas))]
    public void StopDeployHost()
    {
        if (_deployHost is not { } host)
            return;
        _deployHost = null;
        try
        {
            // Not measured: RunAsync must have returned with every replica running.
            Check("RunAsync: running replicas", RunningReplicas(host, "ten"), DeployReplicas);
        }
        finally
        {
            host.ShutdownAsync().GetAwaiter().GetResult();
        }
    }

    /// <summary>From the call until every replica runs (RunAsync returns); host start and shutdown are excluded.</summary>
    [Benchmark, BenchmarkCategory(Deploy), ExpectedResult(Argument + 1)]
    public Task<AdderHandle> RunAsync_10Replicas() =>
        _deployHost!.RunAsync(Adder.Bind().WithOptions(o => o.NumReplicas = DeployReplicas), new RunOptions { Name = "ten" });

    // ---- helpers -------------------------------------------------------------------------------------------

    private static async Task<long> RunCallers<TCaller>(TCaller caller) where TCaller : struct, ICaller
    {
        var callers = new Task<long>[Callers];
        for (var c = 0; c < Callers; c++)
            callers[c] = ConcurrentCallerAsync(caller);
        long sum = 0;
        foreach (var task in callers)
            sum += await task.ConfigureAwait(false);
        return sum;
    }

    private static async Task<long> ConcurrentCallerAsync<TCaller>(TCaller caller) where TCaller : struct, ICaller
    {
        // Start on the thread pool so the 64 callers really run concurrently, not one after another on this thread.
        await Task.Yield();
        return await CallerAsync(caller, CallsPerCaller).ConfigureAwait(false);
    }

    /// <summary>Awaits <paramref name="calls"/> calls one after another; returns Σ_{i&lt;calls} (i + 1).</summary>
    private static async Task<long> CallerAsync<TCaller>(TCaller caller, int calls) where TCaller : struct, ICaller
    {
        long sum = 0;
        for (var i = 0; i < calls; i++)
            sum += await caller.InvokeAsync(i).ConfigureAwait(false);
        return sum;
    }

    private static int RunningReplicas(ServeHost host, string application)
    {
        var count = 0;
        foreach (var replica in host.GetDeployment("Adder", application).Replicas)
        {
            if (replica.State == ReplicaState.Running)
                count++;
        }
        return count;
    }

    private static void Check<T>(string what, T actual, T expected)
    {
        if (!EqualityComparer<T>.Default.Equals(actual, expected))
            throw new InvalidOperationException($"Benchmark setup check failed: {what} returned {actual}, expected {expected}.");
    }

    private interface ICaller
    {
        ValueTask<int> InvokeAsync(int x);
    }

    private readonly struct DirectCall(Adder adder) : ICaller
    {
        public ValueTask<int> InvokeAsync(int x) => new(adder.Call(x));
    }

    private readonly struct DirectAddAsync(Adder adder) : ICaller
    {
        public ValueTask<int> InvokeAsync(int x) => new(adder.AddAsync(x));
    }

    private readonly struct HandleCall(AdderHandle handle) : ICaller
    {
        public ValueTask<int> InvokeAsync(int x) => handle.CallAsync(x);
    }

    private readonly struct HandleAddAsync(AdderHandle handle) : ICaller
    {
        public ValueTask<int> InvokeAsync(int x) => handle.AddAsync(x);
    }

    private readonly struct PoolCall(ChannelWorkerPool pool) : ICaller
    {
        public ValueTask<int> InvokeAsync(int x) => new(pool.CallAsync(x));
    }

    private readonly struct PoolAddAsync(ChannelWorkerPool pool) : ICaller
    {
        public ValueTask<int> InvokeAsync(int x) => new(pool.AddAsync(x));
    }
}
