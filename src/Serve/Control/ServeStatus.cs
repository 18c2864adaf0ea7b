namespace Serve;

/// <summary>Everything the host runs (Ray's <c>serve status</c>).</summary>
/// <param name="Applications">The applications, ordered by name.</param>
public sealed record ServeStatus(IReadOnlyList<ApplicationInfo> Applications)
{
    /// <summary>
    /// The nodes of the cluster (<c>UseOrleans</c>, Serve.Orleans), ordered by id, with their resources, labels and
    /// state; empty on a single host.
    /// </summary>
    public IReadOnlyList<NodeInfo> Nodes { get; init; } = [];
}

/// <summary>One node of a cluster as <see cref="ServeStatus.Nodes"/> reports it.</summary>
/// <param name="NodeId">The node's id (its Orleans silo address).</param>
/// <param name="State"><c>active</c>, <c>draining</c> (stopping: its replicas move to other nodes) or <c>dead</c>.</param>
/// <param name="Cpus">Logical CPUs it offers (its <see cref="ResourceOptions.Cpus"/>).</param>
/// <param name="Gpus">Its GPUs, e.g. <c>gpu0 logical GPU 0 (17179869184 bytes)</c>.</param>
/// <param name="Custom">Its custom resources (<see cref="ResourceOptions.Custom"/>).</param>
/// <param name="Labels">Its labels (for node selectors).</param>
/// <param name="Message">Its problems (a deployment it runs in another version, or lacks), or empty.</param>
public sealed record NodeInfo(
    string NodeId,
    string State,
    double Cpus,
    IReadOnlyList<string> Gpus,
    IReadOnlyDictionary<string, double> Custom,
    IReadOnlyDictionary<string, string> Labels,
    string Message)
{
    /// <summary>True for the node that holds the cluster controller.</summary>
    public bool IsController { get; init; }

    /// <summary>True for the node whose status this is.</summary>
    public bool IsSelf { get; init; }
}
