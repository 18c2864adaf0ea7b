namespace Serve.Orleans;

/// <summary>How a deployment's replicas are spread over the nodes of a cluster.</summary>
public enum ReplicaPlacement
{
    /// <summary>Across as many nodes as possible (the default): a node's failure takes the fewest replicas with it.</summary>
    Spread,

    /// <summary>On as few nodes as possible, leaving whole nodes free for large replicas.</summary>
    Pack,
}

/// <summary>The settings of one node of a multi-node Serve cluster (<c>UseOrleans</c>).</summary>
public sealed class ServeClusterOptions
{
    /// <summary>
    /// This node's labels (e.g. <c>zone = a</c>, <c>gpu = h100</c>): a deployment's node selector places its replicas
    /// only on nodes carrying all the labels it names (docs/cluster.md).
    /// </summary>
    public IDictionary<string, string> NodeLabels { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// How the cluster controller places replicas over nodes. The setting of the node that holds the controller is the
    /// one used: give every node the same.
    /// </summary>
    public ReplicaPlacement Placement { get; set; } = ReplicaPlacement.Spread;

    /// <summary>
    /// How often a node asks the other nodes which replicas they run, so that its routers know them, and how often it
    /// reports to the cluster controller (its heartbeat, whose reply carries its assignment); a node's failure is acted
    /// on at once by the routers and the controller, independently of this. Default 1 second.
    /// </summary>
    public TimeSpan ReplicaRefreshInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long one node waits for another to list its replicas before it tries again at the next refresh, and how long
    /// its admin API waits for the cluster controller to record a PUT or DELETE before answering 503. Default 5 seconds.
    /// </summary>
    public TimeSpan ListTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How this node writes the arguments, results and stream items of its calls to replicas on other nodes.
    /// <see cref="BoundaryFormat.MessagePack"/> (the default: binary, floats as raw bytes; measured faster than JSON
    /// across nodes, benchmarks/RESULTS.md), <see cref="BoundaryFormat.Json"/> (System.Text.Json), or
    /// <see cref="BoundaryFormat.HostDefault"/> (this host's <see cref="ServeOptions.BoundarySerializer"/>, what nodes
    /// used before this option existed; with a custom serializer every node must configure the same one).
    /// </summary>
    /// <remarks>
    /// Independent of <see cref="ServeOptions.BoundarySerializer"/> and of an isolated deployment's boundary format,
    /// which apply within one process. Each call carries its format, and the node that runs it reads the arguments and
    /// writes the answer in that format, so nodes may differ in this setting (e.g. during a rolling change). A value
    /// the format cannot write or read fails the call with a <see cref="NotSupportedException"/> that names the
    /// deployment, the method, the type and this option.
    /// </remarks>
    public BoundaryFormat WireFormat { get; set; } = BoundaryFormat.MessagePack;

    /// <summary>
    /// How long a stopping node (SIGTERM, host stop) waits for the replacements of its replicas to run on other nodes
    /// before its host stops them. Default 30 seconds; keep it below the host's shutdown timeout.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        if (DrainTimeout < TimeSpan.Zero || DrainTimeout > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(DrainTimeout), DrainTimeout,
                $"ServeClusterOptions.DrainTimeout = {DrainTimeout} is out of range; use zero (do not wait) up to one hour (default 30 s).");
        if (ReplicaRefreshInterval <= TimeSpan.Zero || ReplicaRefreshInterval > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(ReplicaRefreshInterval), ReplicaRefreshInterval,
                $"ServeClusterOptions.ReplicaRefreshInterval = {ReplicaRefreshInterval} is out of range; use a positive duration up to one hour (default 1 s).");
        if (ListTimeout <= TimeSpan.Zero || ListTimeout > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(ListTimeout), ListTimeout,
                $"ServeClusterOptions.ListTimeout = {ListTimeout} is out of range; use a positive duration up to one hour (default 5 s).");
        if (!Enum.IsDefined(WireFormat))
            throw new ArgumentOutOfRangeException(nameof(WireFormat), WireFormat,
                $"ServeClusterOptions.WireFormat = {WireFormat} is not a format; use MessagePack (the default), Json or HostDefault.");
        foreach (var (name, value) in NodeLabels)
        {
            if (string.IsNullOrWhiteSpace(name) || value is null)
                throw new ArgumentException($"ServeClusterOptions.NodeLabels has an empty label name or a null value ('{name}'); give every label a name and a value.", nameof(NodeLabels));
        }
    }
}
