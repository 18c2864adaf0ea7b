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

    /// <summary>A stream of small records that are all ready at once (an iterator over data the replica has).</summary>
    public async IAsyncEnumerable<Small> Items(int count)
    {
        for (var i = 0; i < count; i++)
            yield return new Small("item", i, i);
        await Task.CompletedTask;
    }

    /// <summary>A stream of small records produced one at a time (each after a yield to the thread pool).</summary>
    public async IAsyncEnumerable<Small> Produced(int count)
    {
        for (var i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return new Small("item", i, i);
        }
    }

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

    /// <summary>A stream of small records that are all ready at once (an iterator over data the replica has).</summary>
    public async IAsyncEnumerable<Small> Items(int count)
    {
        for (var i = 0; i < count; i++)
            yield return new Small("item", i, i);
        await Task.CompletedTask;
    }

    /// <summary>A stream of small records produced one at a time (each after a yield to the thread pool).</summary>
    public async IAsyncEnumerable<Small> Produced(int count)
    {
        for (var i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return new Small("item", i, i);
        }
    }

    /// <summary>What the HTTP ingress calls.</summary>
    public Reply Call() => new("hello", 42);
}
