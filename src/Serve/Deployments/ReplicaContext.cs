namespace Serve;

/// <summary>
/// What a replica knows about itself. Declare a <see cref="ReplicaContext"/> constructor parameter to receive it;
/// it is injected by the host and left out of <c>Bind(...)</c>.
/// </summary>
public sealed class ReplicaContext
{
    internal ReplicaContext(string applicationName, string deploymentName, string replicaId, string version, CancellationToken stoppingToken)
    {
        ApplicationName = applicationName;
        DeploymentName = deploymentName;
        ReplicaId = replicaId;
        Version = version;
        StoppingToken = stoppingToken;
    }

    /// <summary>The application the replica belongs to.</summary>
    public string ApplicationName { get; }

    /// <summary>The deployment the replica belongs to.</summary>
    public string DeploymentName { get; }

    /// <summary>A unique id within the host, <c>{Deployment}#{serial}</c> (hexadecimal).</summary>
    public string ReplicaId { get; }

    /// <summary>The code version the replica runs.</summary>
    public string Version { get; }

    /// <summary>
    /// Cancelled when the replica starts stopping (scale-down, rolling update, delete or shutdown). It stops taking
    /// new calls at that moment, and in-flight calls may finish within the graceful shutdown timeout; background
    /// work the replica started should end when this fires.
    /// </summary>
    public CancellationToken StoppingToken { get; }

    private static readonly AsyncLocal<string?> s_modelId = new();

    /// <summary>
    /// The model id of the call being handled (<c>handle.WithModelId("m1")</c>, or the HTTP header
    /// <c>serve_multiplexed_model_id</c>), or <c>null</c> when the call names none. It flows with the call's async
    /// work, so read it inside the call.
    /// </summary>
    public string? ModelId => s_modelId.Value;

    internal static string? CurrentModelId => s_modelId.Value;

    /// <summary>Sets the model id for the call about to run on this thread; returns the previous one to restore.</summary>
    internal static string? EnterModel(string? modelId)
    {
        var previous = s_modelId.Value;
        if (!ReferenceEquals(previous, modelId))
            s_modelId.Value = modelId;
        return previous;
    }

    /// <summary>
    /// How many threads the replica's CPU work may use: its <see cref="DeploymentOptions.NumCpus"/> rounded up (at
    /// least 1), or <see cref="Environment.ProcessorCount"/> when <c>NumCpus</c> is 0. Serve runs at most this many of
    /// the replica's calls at once (see docs/resources.md); pass it to your own libraries, e.g.
    /// <c>new ParallelOptions { MaxDegreeOfParallelism = context.CpuThreads }</c> (the <c>OMP_NUM_THREADS</c> of .NET).
    /// </summary>
    public int CpuThreads { get; internal set; } = 1;

    /// <summary>
    /// The replica's GPU share when its deployment asks for <see cref="DeploymentOptions.NumGpus"/> &gt; 0: device
    /// ordinal, fraction and memory budget, plus the stream and budgeted allocator when a GPU runtime (Serve.Cuda's
    /// <c>AddCuda()</c>) is installed. <c>null</c> for a CPU-only replica.
    /// </summary>
    public ReplicaGpu? Gpu { get; internal set; }

    private readonly object _ownedLock = new();
    private List<IDisposable>? _owned;
    private bool _ownedDisposed;

    /// <summary>
    /// Hands <paramref name="resource"/> to the replica: it is disposed when the replica stops, after the user object
    /// (and its multiplexed models) and before its GPU share, in reverse order of registration. Libraries that open
    /// per-replica state (Serve.Onnx's <c>context.OnnxSession(...)</c>) use this so the user need not dispose it.
    /// Registered after the replica stopped, it is disposed at once.
    /// </summary>
    public void RegisterForDispose(IDisposable resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        lock (_ownedLock)
        {
            if (!_ownedDisposed)
            {
                (_owned ??= []).Add(resource);
                return;
            }
        }
        resource.Dispose();
    }

    /// <summary>Disposes what <see cref="RegisterForDispose"/> was given, last first; returns the failures (empty when none).</summary>
    internal List<Exception> DisposeRegistered()
    {
        List<IDisposable>? owned;
        lock (_ownedLock)
        {
            _ownedDisposed = true;
            owned = _owned;
            _owned = null;
        }
        var errors = new List<Exception>();
        for (var i = (owned?.Count ?? 0) - 1; i >= 0; i--)
        {
            try
            {
                owned![i].Dispose();
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        }
        return errors;
    }

    /// <inheritdoc />
    public override string ToString() => $"{ApplicationName}/{ReplicaId}";
}
