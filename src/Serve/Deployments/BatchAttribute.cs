namespace Serve;

/// <summary>
/// Groups concurrent calls of one deployment method on a replica into batches (Ray Serve's <c>@serve.batch</c>).
/// The method takes <c>IReadOnlyList&lt;T&gt;</c> (and optionally a <see cref="CancellationToken"/>) and returns
/// <c>IReadOnlyList&lt;R&gt;</c>, <c>Task&lt;IReadOnlyList&lt;R&gt;&gt;</c> or <c>ValueTask&lt;IReadOnlyList&lt;R&gt;&gt;</c>
/// with one result per input, in order; the generated handle method takes one <c>T</c> and returns one <c>R</c>.
/// </summary>
/// <remarks>
/// A batch closes when it holds <see cref="MaxBatchSize"/> calls or when its oldest call has waited
/// <see cref="BatchWaitTimeoutMs"/>; at most <see cref="MaxConcurrentBatches"/> batches run at once per replica.
/// Each call still takes a replica slot, so set <see cref="DeploymentOptions.MaxOngoingRequests"/> to at least
/// <see cref="MaxBatchSize"/> or batches never fill. The generator adds a private property <c>{Method}Batch</c>
/// (a <see cref="Batching.BatchQueue"/>) to the class, through which the replica can change these settings at run
/// time, for example in <see cref="IReconfigurable{TConfig}.ReconfigureAsync"/>. See docs/batching.md.
/// </remarks>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class BatchAttribute : Attribute
{
    /// <summary>The default of <see cref="MaxBatchSize"/> (Ray Serve's).</summary>
    public const int DefaultMaxBatchSize = 10;

    /// <summary>The default of <see cref="BatchWaitTimeoutMs"/> (Ray Serve's 0.01 s).</summary>
    public const int DefaultBatchWaitTimeoutMs = 10;

    /// <summary>The default of <see cref="MaxConcurrentBatches"/>.</summary>
    public const int DefaultMaxConcurrentBatches = 1;

    /// <summary>The most calls in one batch; 1 or more, default 10.</summary>
    public int MaxBatchSize { get; set; } = DefaultMaxBatchSize;

    /// <summary>How long, in milliseconds, a batch's oldest call waits for the batch to fill; 0 or more, default 10.</summary>
    public int BatchWaitTimeoutMs { get; set; } = DefaultBatchWaitTimeoutMs;

    /// <summary>How many batches of this method one replica runs at once; 1 or more, default 1.</summary>
    public int MaxConcurrentBatches { get; set; } = DefaultMaxConcurrentBatches;
}
