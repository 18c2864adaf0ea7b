namespace Serve;

/// <summary>One replica as <see cref="IServeClient.ListDeployments"/> reports it.</summary>
/// <param name="ReplicaId">The replica id.</param>
/// <param name="State">Its state.</param>
/// <param name="Version">The code version it runs.</param>
/// <param name="OngoingRequests">Calls it is running now.</param>
public sealed record ReplicaInfo(string ReplicaId, ReplicaState State, string Version, int OngoingRequests)
{
    /// <summary>
    /// The load context the replica runs in: <c>Default</c> for <see cref="RuntimeEnv.Shared"/>, otherwise the pooled
    /// isolated context's name, <c>{application}/{deployment}@{version}#{serial}</c> (also its
    /// <see cref="System.Runtime.Loader.AssemblyLoadContext.Name"/>). <c>Default</c> until an isolated replica has loaded.
    /// </summary>
    public string LoadContext { get; init; } = "Default";

    /// <summary>Threads that may run the replica's calls at once (its <see cref="DeploymentOptions.NumCpus"/> rounded up; see docs/resources.md).</summary>
    public int CpuThreads { get; init; }

    /// <summary>Its GPU share, e.g. <c>gpu0 × 0.5 (NVIDIA H100, budget 42949672960 bytes)</c>, or <c>null</c> for a CPU-only replica (or before it has started).</summary>
    public string? Gpu { get; init; }

    /// <summary>
    /// The node the replica runs on: in a cluster (<c>UseOrleans</c>, Serve.Orleans) the node's id (its Orleans silo
    /// address); <c>null</c> on a single host.
    /// </summary>
    public string? Node { get; init; }
}
