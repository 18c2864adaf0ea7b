using Microsoft.ML.OnnxRuntime;

namespace Serve.Onnx;

/// <summary>Opens ONNX Runtime sessions that fit the replica they run in.</summary>
public static class ServeOnnxExtensions
{
    /// <summary>
    /// Opens the ONNX model at <paramref name="modelPath"/> for this replica and hands the session to the replica, which
    /// disposes it when it stops. The options follow the replica's resources (see docs/models.md):
    /// <list type="bullet">
    /// <item><c>IntraOpNumThreads</c> = <see cref="ReplicaContext.CpuThreads"/>: <c>NumCpus</c> rounded up, or every
    /// processor for <c>NumCpus = 0</c> (no reservation); <c>InterOpNumThreads</c> = 1, sequential execution.</item>
    /// <item>With a GPU share (<c>NumGpus &gt; 0</c>): the CUDA execution provider on the replica's device with
    /// <c>gpu_mem_limit</c> = its memory budget (fraction × device memory) and, under Serve.Cuda's <c>AddCuda()</c>, the
    /// replica's own stream as <c>user_compute_stream</c>.</item>
    /// </list>
    /// <paramref name="configure"/> runs last and may change any of them.
    /// Call it in the deployment's constructor, so a missing or broken model fails the replica's start.
    /// </summary>
    /// <exception cref="OnnxModelLoadException">The file is missing or not a valid model; the message has the path and ONNX Runtime's reason.</exception>
    public static ReplicaOnnxSession OnnxSession(this ReplicaContext context, string modelPath, Action<SessionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        var fullPath = Path.GetFullPath(modelPath);
        return Open(context, fullPath, configure, options => new InferenceSession(fullPath, options));
    }

    /// <summary>Opens an ONNX model held in memory (e.g. an embedded resource); otherwise as <see cref="OnnxSession(ReplicaContext, string, Action{SessionOptions}?)"/>.</summary>
    /// <param name="context">The replica.</param>
    /// <param name="model">The model's bytes.</param>
    /// <param name="modelName">What errors call the model, e.g. the resource name.</param>
    /// <param name="configure">Runs after Serve's options; may change any of them.</param>
    /// <exception cref="OnnxModelLoadException">The bytes are not a valid model; the message has <paramref name="modelName"/> and ONNX Runtime's reason.</exception>
    public static ReplicaOnnxSession OnnxSession(this ReplicaContext context, byte[] model, string modelName, Action<SessionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        return Open(context, modelName, configure, options => new InferenceSession(model, options));
    }

    /// <summary>Reads an ONNX model from <paramref name="model"/> (to its end) and opens it; otherwise as <see cref="OnnxSession(ReplicaContext, byte[], string, Action{SessionOptions}?)"/>.</summary>
    /// <exception cref="OnnxModelLoadException">The stream does not hold a valid model, or could not be read.</exception>
    public static ReplicaOnnxSession OnnxSession(this ReplicaContext context, Stream model, string modelName, Action<SessionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        byte[] bytes;
        try
        {
            using var buffer = new MemoryStream(model.CanSeek ? (int)Math.Min(int.MaxValue, Math.Max(0, model.Length - model.Position)) : 0);
            model.CopyTo(buffer);
            bytes = buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
        }
        catch (IOException e)
        {
            throw new OnnxModelLoadException(context.DeploymentName, context.ReplicaId, modelName, "the stream could not be read: " + e.Message, e);
        }
        return context.OnnxSession(bytes, modelName, configure);
    }

    private static ReplicaOnnxSession Open(ReplicaContext context, string model, Action<SessionOptions>? configure, Func<SessionOptions, InferenceSession> create)
    {
        var plan = OnnxSessionPlan.For(context);
        InferenceSession session;
        using (var options = new SessionOptions())
        {
            plan.ApplyTo(options, context.DeploymentName, context.ReplicaId);
            configure?.Invoke(options);
            try
            {
                session = create(options);
            }
            catch (OnnxRuntimeException e)
            {
                throw new OnnxModelLoadException(context.DeploymentName, context.ReplicaId, model, e.Message, e);
            }
        }
        var replicaSession = new ReplicaOnnxSession(session, model, context.DeploymentName);
        context.RegisterForDispose(replicaSession);
        return replicaSession;
    }
}
