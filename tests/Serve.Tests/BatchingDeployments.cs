using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Serve.Tests;

// Deployments for BatchingTests and CancellationTests.

/// <summary>What a batch method saw: each batch's inputs, and a gate that holds batches inside the method.</summary>
public sealed class BatchProbe
{
    private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inside;

    public ConcurrentQueue<int[]> Batches { get; } = new();
    public SemaphoreSlim BatchEntered { get; } = new(0);
    public ConcurrentQueue<bool> TokenCancelled { get; } = new();
    public bool Holding { get; set; }
    public int Inside => Volatile.Read(ref _inside);

    public void Open() => _gate.TrySetResult();

    public async Task EnterAsync(IReadOnlyList<int> inputs, CancellationToken cancellationToken)
    {
        Batches.Enqueue([.. inputs]);
        Interlocked.Increment(ref _inside);
        BatchEntered.Release();
        try
        {
            if (Holding)
            {
                try
                {
                    await _gate.Task.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    TokenCancelled.Enqueue(true);
                    throw;
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inside);
        }
    }

    public async Task WaitBatchesAsync(int count)
    {
        for (var i = 0; i < count; i++)
            Assert.True(await BatchEntered.WaitAsync(TimeSpan.FromSeconds(20)), $"only {i} of {count} batches started");
    }
}

public sealed record BatchConfig(int MaxBatchSize);

/// <summary>Batches close only when full (the wait is a minute), so tests see deterministic batches.</summary>
[Deployment(MaxOngoingRequests = 64)]
public partial class Doubler(BatchProbe probe) : IReconfigurable<BatchConfig>
{
    [Batch(MaxBatchSize = 4, BatchWaitTimeoutMs = 60_000, MaxConcurrentBatches = 1)]
    public async Task<IReadOnlyList<int>> Double(IReadOnlyList<int> inputs, CancellationToken cancellationToken)
    {
        await probe.EnterAsync(inputs, cancellationToken);
        return inputs.Select(x => x * 2).ToArray();
    }

    [Batch(MaxBatchSize = 3, BatchWaitTimeoutMs = 60_000)]
    public IReadOnlyList<string> Short(IReadOnlyList<int> inputs) => inputs.Skip(1).Select(x => x.ToString()).ToArray();

    [Batch(MaxBatchSize = 3, BatchWaitTimeoutMs = 60_000)]
    public ValueTask<IReadOnlyList<int>> Fail(IReadOnlyList<int> inputs) => throw new InvalidDataException($"bad batch of {inputs.Count}");

    [Batch(MaxBatchSize = 1000, BatchWaitTimeoutMs = 5)]
    public IReadOnlyList<int> Quick(IReadOnlyList<int> inputs)
    {
        probe.Batches.Enqueue([.. inputs]);
        return inputs;
    }

    /// <summary>The replica's view of its Double queue: running batches / queued calls / max batch size / concurrent batches.</summary>
    public string Stats() => $"{DoubleBatch.RunningBatches}/{DoubleBatch.QueuedCalls}/{DoubleBatch.MaxBatchSize}/{DoubleBatch.MaxConcurrentBatches}";

    public void SetConcurrency(int batches) => DoubleBatch.MaxConcurrentBatches = batches;

    public ValueTask ReconfigureAsync(BatchConfig config, CancellationToken cancellationToken)
    {
        DoubleBatch.MaxBatchSize = config.MaxBatchSize;
        return ValueTask.CompletedTask;
    }
}

/// <summary>Ignores its cancellation token: it returns only when the probe releases it.</summary>
[Deployment(MaxOngoingRequests = 1)]
public partial class Stubborn(Probe probe, ReplicaContext context)
{
    public Task<string> Wait(int ticket) => probe.HoldAsync(context.ReplicaId, ticket, CancellationToken.None);

    /// <summary>A void method that does honour its token.</summary>
    public Task Nap(CancellationToken cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
}

/// <summary>A stream that records how far it got and whether its token fired.</summary>
public sealed class ProducerProbe
{
    private int _produced;
    public int Produced => Volatile.Read(ref _produced);
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public void Produce() => Interlocked.Increment(ref _produced);
}

[Deployment]
public partial class Producer(ProducerProbe probe)
{
    /// <summary>Yields 0..n-1; with <paramref name="stallAfter"/> &gt;= 0 it waits (on its token only) after that many items.</summary>
    public async IAsyncEnumerable<int> Call(int n, int stallAfter = -1, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(() => probe.Cancelled.TrySetResult());
        try
        {
            for (var i = 0; i < n; i++)
            {
                if (i == stallAfter)
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                probe.Produce();
                yield return i;
            }
        }
        finally
        {
            probe.Finished.TrySetResult();
        }
    }
}

/// <summary>Streaming batches: each step yields one item per caller.</summary>
[Deployment(MaxOngoingRequests = 16)]
public partial class Tokens(BatchProbe probe)
{
    [Batch(MaxBatchSize = 3, BatchWaitTimeoutMs = 60_000)]
    public async IAsyncEnumerable<IReadOnlyList<string>> Generate(IReadOnlyList<int> prompts, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        probe.Batches.Enqueue([.. prompts]);
        for (var step = 0; step < 3; step++)
        {
            await Task.Yield();
            yield return prompts.Select(p => $"{p}:{step}").ToArray();
        }
    }

    [Batch(MaxBatchSize = 2, BatchWaitTimeoutMs = 60_000)]
    public async IAsyncEnumerable<IReadOnlyList<int>> Uneven(IReadOnlyList<int> inputs)
    {
        await Task.Yield();
        yield return inputs;
        yield return inputs.Skip(1).ToArray();
    }

    [Batch(MaxBatchSize = 2, BatchWaitTimeoutMs = 60_000)]
    public async IAsyncEnumerable<IReadOnlyList<int>> Endless(IReadOnlyList<int> inputs, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(() => probe.TokenCancelled.Enqueue(true));
        for (var step = 0; ; step++)
        {
            await Task.Delay(1, cancellationToken);
            yield return inputs.Select(x => x * 1000 + step).ToArray();
        }
    }
}

/// <summary>A batched call method, served over HTTP.</summary>
[Deployment(MaxOngoingRequests = 8)]
public partial class HttpBatched(BatchProbe probe)
{
    [Batch(MaxBatchSize = 3, BatchWaitTimeoutMs = 60_000)]
    public IReadOnlyList<int> Call(IReadOnlyList<int> inputs)
    {
        probe.Batches.Enqueue([.. inputs]);
        return inputs.Select(x => x * 2).ToArray();
    }
}

/// <summary>No constructor arguments, so it also runs in an isolated load context; each result tells its batch's size.</summary>
[Deployment(MaxOngoingRequests = 8)]
public partial class SizeTagger
{
    [Batch(MaxBatchSize = 3, BatchWaitTimeoutMs = 60_000)]
    public Task<IReadOnlyList<string>> Tag(IReadOnlyList<int> inputs) =>
        Task.FromResult<IReadOnlyList<string>>(inputs.Select(x => $"{x}/{inputs.Count}").ToArray());
}

/// <summary>An ingress that calls <see cref="Stubborn"/> with a short timeout.</summary>
[Deployment]
public partial class ImpatientIngress(StubbornHandle stubborn)
{
    public async Task<string> Call() => await stubborn.WithTimeout(TimeSpan.FromMilliseconds(100)).WaitAsync(1);
}

/// <summary>Each result tells the batch's model id and size.</summary>
[Deployment(MaxOngoingRequests = 8)]
public partial class ModelTagger(ReplicaContext context)
{
    [Batch(MaxBatchSize = 2, BatchWaitTimeoutMs = 60_000)]
    public IReadOnlyList<string> Tag(IReadOnlyList<int> inputs) =>
        inputs.Select(x => $"{context.ModelId}:{x}/{inputs.Count}").ToArray();
}
