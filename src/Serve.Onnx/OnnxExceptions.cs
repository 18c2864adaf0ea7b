namespace Serve.Onnx;

/// <summary>
/// An ONNX model could not be opened: the file is missing, unreadable or not a valid model, or ONNX Runtime refused
/// the session options. Thrown from <c>context.OnnxSession(...)</c> in a replica's constructor, it fails the replica's
/// start, so a deploy with a bad model fails and the version already serving keeps serving.
/// </summary>
public sealed class OnnxModelLoadException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public OnnxModelLoadException(string deploymentName, string replicaId, string model, string reason, Exception? innerException)
        : base($"Deployment '{deploymentName}' (replica {replicaId}) could not open ONNX model '{model}': {reason} " +
               "Check that the path is right (relative paths resolve against the process's working directory, " +
               $"'{Environment.CurrentDirectory}') and that the file is a complete .onnx model.", innerException)
    {
        DeploymentName = deploymentName;
        Model = model;
        Reason = reason;
    }

    /// <summary>The deployment whose replica failed to start.</summary>
    public string DeploymentName { get; }

    /// <summary>The model's full path, or the name given for a model passed as bytes or a stream.</summary>
    public string Model { get; }

    /// <summary>ONNX Runtime's own reason.</summary>
    public string Reason { get; }
}

/// <summary>
/// An input does not fit the model: an unknown or missing input name, the wrong element type, or the wrong shape. The
/// message names the input, the shape and type the model expects and what it received. It derives from
/// <see cref="InvalidInputException"/>, so the HTTP ingress answers 400.
/// </summary>
public sealed class OnnxInputException : InvalidInputException
{
    /// <summary>Creates the exception.</summary>
    public OnnxInputException(string inputName, string expected, string received, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        InputName = inputName;
        Expected = expected;
        Received = received;
    }

    /// <summary>The input's name (as the model declares it, or as the caller passed it when the model has no such input).</summary>
    public string InputName { get; }

    /// <summary>What the model expects, e.g. <c>float [batch, 4]</c>.</summary>
    public string Expected { get; }

    /// <summary>What was received, e.g. <c>float [2, 3]</c>.</summary>
    public string Received { get; }
}
