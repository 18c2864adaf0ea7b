using Serve;

namespace ClusterBench;

/// <summary>The small record the benchmark sends and gets back.</summary>
public sealed record Small(string Name, int Id, double Score);

/// <summary>What HTTP GETs answer: <c>{"message":"hello","value":42}</c> (the same reply as benchmarks/http).</summary>
public sealed record Reply(string Message, int Value);

/// <summary>Replicas on node B only: every call from node A crosses nodes.</summary>
[Deployment]
public partial class RemoteEcho
{
    /// <summary>Returns its argument (a small record).</summary>
    public Small Echo(Small value) => value;

    /// <summary>Returns its argument (a 384-float vector: one sentence embedding).</summary>
    public float[] Vector(float[] value) => value;

    /// <summary>What the HTTP ingress calls.</summary>
    public Reply Call() => new("hello", 42);
}

/// <summary>The same methods with replicas on node A only: the local handle call, side by side.</summary>
[Deployment]
public partial class LocalEcho
{
    /// <summary>Returns its argument (a small record).</summary>
    public Small Echo(Small value) => value;

    /// <summary>Returns its argument (a 384-float vector).</summary>
    public float[] Vector(float[] value) => value;

    /// <summary>What the HTTP ingress calls.</summary>
    public Reply Call() => new("hello", 42);
}
