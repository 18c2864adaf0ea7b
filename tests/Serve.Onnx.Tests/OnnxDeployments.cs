using System.Collections.Concurrent;
using Microsoft.AspNetCore.Mvc;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Serve.Onnx.Tests;

/// <summary>A batch of rows for the doubler, as a client sends it: the values row by row and the shape.</summary>
public sealed record DoubleRequest(float[] Values, int Rows, int Columns);

/// <summary>What the <see cref="Doubler"/> replicas report to a test.</summary>
public sealed class DoublerProbe
{
    public ConcurrentQueue<ReplicaOnnxSession> Sessions { get; } = new();
    public ConcurrentQueue<(int IntraOp, int InterOp)> Threads { get; } = new();
}

/// <summary>Serves the tiny y = x + x model (input x: float [batch, 4]) from a path.</summary>
[Deployment]
public partial class Doubler
{
    private readonly ReplicaOnnxSession _session;

    public Doubler(string modelPath, DoublerProbe probe, ReplicaContext context)
    {
        _session = context.OnnxSession(modelPath, options => probe.Threads.Enqueue((options.IntraOpNumThreads, options.InterOpNumThreads)));
        probe.Sessions.Enqueue(_session);
    }

    public float[] Run(DoubleRequest request)
    {
        var input = new DenseTensor<float>(request.Values, [request.Rows, request.Columns]);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor("x", input)]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    [HttpPost("double")]
    public float[] Double([FromBody] DoubleRequest request) => Run(request);

    /// <summary>Sends int64 values where the model wants float.</summary>
    public float[] RunAsLongs(long[] values)
    {
        var input = new DenseTensor<long>(values, [1, values.Length]);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor("x", input)]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    /// <summary>Names an input the model does not have.</summary>
    public float[] RunNamed(string name, float[] values)
    {
        var input = new DenseTensor<float>(values, [1, values.Length]);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor(name, input)]);
        return results.First().AsEnumerable<float>().ToArray();
    }
}
