using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OrtRunOptions = Microsoft.ML.OnnxRuntime.RunOptions;

namespace Serve.Onnx;

/// <summary>
/// A replica's ONNX Runtime session (from <c>context.OnnxSession(...)</c>): the <see cref="InferenceSession"/> opened
/// with the replica's CPU threads and GPU share, plus <c>Run</c> overloads that check each input's name, element type
/// and shape against the model first and throw <see cref="OnnxInputException"/> (HTTP 400) naming the input, what the
/// model expects and what it received. The replica disposes it when it stops; do not dispose it yourself while calls
/// may still use it. <see cref="InferenceSession.Run(IReadOnlyCollection{NamedOnnxValue})"/> is thread-safe, so one
/// session serves all of the replica's concurrent calls.
/// </summary>
public sealed class ReplicaOnnxSession : IDisposable
{
    private readonly string _deploymentName;
    private int _disposed;

    internal ReplicaOnnxSession(InferenceSession session, string model, string deploymentName)
    {
        Session = session;
        Model = model;
        _deploymentName = deploymentName;
    }

    /// <summary>The ONNX Runtime session, for what the <c>Run</c> overloads here do not cover (IOBinding, OrtValue outputs …).</summary>
    public InferenceSession Session { get; }

    /// <summary>The model's full path, or the name given for a model opened from bytes or a stream.</summary>
    public string Model { get; }

    /// <summary>The model's inputs: name, element type and shape (-1 for a free dimension).</summary>
    public IReadOnlyDictionary<string, NodeMetadata> InputMetadata => Session.InputMetadata;

    /// <summary>The model's outputs.</summary>
    public IReadOnlyDictionary<string, NodeMetadata> OutputMetadata => Session.OutputMetadata;

    /// <summary>Checks <paramref name="inputs"/> against the model, then runs it and returns every output.</summary>
    /// <exception cref="OnnxInputException">An input is unknown, missing, of the wrong element type or shape.</exception>
    public IDisposableReadOnlyCollection<DisposableNamedOnnxValue> Run(IReadOnlyCollection<NamedOnnxValue> inputs, OrtRunOptions? runOptions = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        foreach (var input in inputs)
        {
            if (input.Value is not TensorBase tensor)
                continue; // maps and sequences: ONNX Runtime checks those itself
            var (type, shape) = Describe(tensor);
            Validate(input.Name, type, shape);
        }
        CheckAllGiven(inputs.Count, inputs.Select(i => i.Name));
        try
        {
            return runOptions is null
                ? Session.Run(inputs)
                : Session.Run(inputs, Session.OutputNames, runOptions);
        }
        catch (OnnxRuntimeException e) when (IsInvalidArgument(e))
        {
            throw Rejected(e);
        }
    }

    /// <summary>Checks <paramref name="inputs"/> against the model, then runs it and returns <paramref name="outputNames"/> as <see cref="OrtValue"/>s.</summary>
    /// <exception cref="OnnxInputException">An input is unknown, missing, of the wrong element type or shape.</exception>
    public IDisposableReadOnlyCollection<OrtValue> Run(IReadOnlyDictionary<string, OrtValue> inputs, IReadOnlyCollection<string> outputNames, OrtRunOptions? runOptions = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputNames);
        foreach (var (name, value) in inputs)
        {
            if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
                continue;
            var info = value.GetTensorTypeAndShape();
            Validate(name, info.ElementDataType, info.Shape);
        }
        CheckAllGiven(inputs.Count, inputs.Keys);
        try
        {
            if (runOptions is not null)
                return Session.Run(runOptions, inputs, outputNames);
            using var defaults = new OrtRunOptions();
            return Session.Run(defaults, inputs, outputNames);
        }
        catch (OnnxRuntimeException e) when (IsInvalidArgument(e))
        {
            throw Rejected(e);
        }
    }

    /// <summary>
    /// Checks one tensor input against the model: its name, element type and shape (every fixed dimension must match;
    /// free dimensions take any size). Call it yourself before <see cref="Session"/>'s own <c>Run</c> overloads.
    /// </summary>
    /// <exception cref="OnnxInputException">The input does not fit; the message says how.</exception>
    public void Validate(string inputName, TensorElementType elementType, ReadOnlySpan<long> shape)
    {
        ArgumentNullException.ThrowIfNull(inputName);
        var received = Format(elementType, shape);
        if (!Session.InputMetadata.TryGetValue(inputName, out var meta))
        {
            var expected = string.Join(", ", Session.InputMetadata.Select(kv => $"'{kv.Key}' {Format(kv.Value)}"));
            throw new OnnxInputException(inputName, expected, received,
                $"Deployment '{_deploymentName}': model '{Model}' has no input '{inputName}' (received {received}); its inputs are {expected}.");
        }
        if (!meta.IsTensor)
            return;
        var fits = meta.ElementDataType == elementType && shape.Length == meta.Dimensions.Length;
        for (var i = 0; fits && i < shape.Length; i++)
        {
            if (meta.Dimensions[i] >= 0 && meta.Dimensions[i] != shape[i])
                fits = false;
        }
        if (fits)
            return;
        var want = Format(meta);
        throw new OnnxInputException(inputName, want, received,
            $"Deployment '{_deploymentName}': model '{Model}' input '{inputName}' expects {want} but received {received}.");
    }

    /// <summary>True once the replica (or the owner) disposed the session.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            Session.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"ONNX model '{Model}' of deployment '{_deploymentName}'";

    private void CheckAllGiven(int count, IEnumerable<string> names)
    {
        if (count >= Session.InputMetadata.Count)
            return;
        var given = new HashSet<string>(names, StringComparer.Ordinal);
        foreach (var (name, meta) in Session.InputMetadata)
        {
            if (!given.Contains(name))
            {
                var want = Format(meta);
                throw new OnnxInputException(name, want, "nothing",
                    $"Deployment '{_deploymentName}': model '{Model}' input '{name}' ({want}) was not given; pass every input: " +
                    string.Join(", ", Session.InputMetadata.Keys.Select(k => $"'{k}'")) + ".");
            }
        }
    }

    private static bool IsInvalidArgument(OnnxRuntimeException e) =>
        e.Message.StartsWith("[ErrorCode:InvalidArgument]", StringComparison.Ordinal);

    private OnnxInputException Rejected(OnnxRuntimeException e) =>
        new("(unknown)", "(see message)", "(see message)",
            $"Deployment '{_deploymentName}': model '{Model}' rejected its input: {e.Message}", e);

    private static string Format(NodeMetadata meta)
    {
        if (!meta.IsTensor)
            return meta.OnnxValueType.ToString();
        var text = new StringBuilder(TypeName(meta.ElementDataType)).Append(" [");
        for (var i = 0; i < meta.Dimensions.Length; i++)
        {
            if (i > 0)
                text.Append(", ");
            var symbol = i < meta.SymbolicDimensions.Length ? meta.SymbolicDimensions[i] : null;
            if (meta.Dimensions[i] >= 0)
                text.Append(meta.Dimensions[i]);
            else
                text.Append(string.IsNullOrEmpty(symbol) ? "?" : symbol);
        }
        return text.Append(']').ToString();
    }

    private static string Format(TensorElementType type, ReadOnlySpan<long> shape)
    {
        var text = new StringBuilder(TypeName(type)).Append(" [");
        for (var i = 0; i < shape.Length; i++)
        {
            if (i > 0)
                text.Append(", ");
            text.Append(shape[i]);
        }
        return text.Append(']').ToString();
    }

    private static string TypeName(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float",
        TensorElementType.Double => "double",
        TensorElementType.Float16 => "float16",
        TensorElementType.BFloat16 => "bfloat16",
        TensorElementType.Int64 => "int64",
        TensorElementType.Int32 => "int32",
        TensorElementType.Int16 => "int16",
        TensorElementType.Int8 => "int8",
        TensorElementType.UInt8 => "uint8",
        TensorElementType.UInt16 => "uint16",
        TensorElementType.UInt32 => "uint32",
        TensorElementType.UInt64 => "uint64",
        TensorElementType.Bool => "bool",
        TensorElementType.String => "string",
        _ => type.ToString(),
    };

    private static (TensorElementType Type, long[] Shape) Describe(TensorBase tensor)
    {
        var type = tensor switch
        {
            Tensor<float> => TensorElementType.Float,
            Tensor<double> => TensorElementType.Double,
            Tensor<long> => TensorElementType.Int64,
            Tensor<int> => TensorElementType.Int32,
            Tensor<short> => TensorElementType.Int16,
            Tensor<sbyte> => TensorElementType.Int8,
            Tensor<byte> => TensorElementType.UInt8,
            Tensor<ushort> => TensorElementType.UInt16,
            Tensor<uint> => TensorElementType.UInt32,
            Tensor<ulong> => TensorElementType.UInt64,
            Tensor<bool> => TensorElementType.Bool,
            Tensor<string> => TensorElementType.String,
            Tensor<Float16> => TensorElementType.Float16,
            Tensor<BFloat16> => TensorElementType.BFloat16,
            _ => TensorElementType.DataTypeMax,
        };
        var dims = tensor switch
        {
            Tensor<float> t => t.Dimensions,
            Tensor<double> t => t.Dimensions,
            Tensor<long> t => t.Dimensions,
            Tensor<int> t => t.Dimensions,
            Tensor<short> t => t.Dimensions,
            Tensor<sbyte> t => t.Dimensions,
            Tensor<byte> t => t.Dimensions,
            Tensor<ushort> t => t.Dimensions,
            Tensor<uint> t => t.Dimensions,
            Tensor<ulong> t => t.Dimensions,
            Tensor<bool> t => t.Dimensions,
            Tensor<string> t => t.Dimensions,
            Tensor<Float16> t => t.Dimensions,
            Tensor<BFloat16> t => t.Dimensions,
            _ => ReadOnlySpan<int>.Empty,
        };
        var shape = new long[dims.Length];
        for (var i = 0; i < dims.Length; i++)
            shape[i] = dims[i];
        return (type, shape);
    }
}
