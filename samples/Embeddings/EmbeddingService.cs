using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Mvc;
using Serve;

namespace Embeddings;

/// <summary>The body of <c>POST /embed</c>: <c>{"texts": ["…", "…"]}</c>, or one JSON string.</summary>
[JsonConverter(typeof(EmbedRequestConverter))]
public sealed record EmbedRequest(IReadOnlyList<string> Texts);

/// <summary>One vector per text, in order, each <see cref="MiniLM.Dimensions"/> long and of length 1.</summary>
public sealed record EmbedResponse(int Dimensions, IReadOnlyList<float[]> Embeddings);

/// <summary>The cosine similarity of two texts' embeddings, from -1 to 1.</summary>
public sealed record SimilarityResponse(string A, string B, double Cosine);

/// <summary>The HTTP front of the sample: sends each text to <see cref="MiniLM"/> as its own call, so texts from all requests share batches.</summary>
// It only awaits the model, so let it hold many requests at once: with the default MaxOngoingRequests = 5 no more than
// 5 requests would reach MiniLM's batches at a time (docs/batching.md).
[Deployment(MaxOngoingRequests = 64)]
public sealed partial class EmbeddingService(MiniLMHandle model)
{
    /// <summary>The most texts one request may carry.</summary>
    public const int MaxTexts = 256;

    [HttpPost("embed")]
    public async Task<EmbedResponse> Embed([FromBody] EmbedRequest request, CancellationToken cancellationToken)
    {
        if (request.Texts.Count is 0 or > MaxTexts)
            throw new InvalidInputException($"'texts' holds {request.Texts.Count} texts; send 1 to {MaxTexts}.");
        var calls = new Task<float[]>[request.Texts.Count];
        for (var i = 0; i < calls.Length; i++)
            calls[i] = model.EmbedAsync(request.Texts[i] ?? throw new InvalidInputException($"'texts[{i}]' is null; send a string."), cancellationToken).AsTask();
        return new EmbedResponse(MiniLM.Dimensions, await Task.WhenAll(calls).ConfigureAwait(false));
    }

    [HttpGet("similarity")]
    public async Task<SimilarityResponse> Similarity([FromQuery] string a, [FromQuery] string b, CancellationToken cancellationToken)
    {
        var first = model.EmbedAsync(a, cancellationToken).AsTask();
        var second = model.EmbedAsync(b, cancellationToken).AsTask();
        var x = await first.ConfigureAwait(false);
        var y = await second.ConfigureAwait(false);
        return new SimilarityResponse(a, b, Cosine(x, y));
    }

    /// <summary>The cosine of two vectors (their dot product when both have length 1, as MiniLM's do).</summary>
    public static double Cosine(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double dot = 0, xx = 0, yy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            dot += x[i] * y[i];
            xx += x[i] * x[i];
            yy += y[i] * y[i];
        }
        return dot / Math.Max(Math.Sqrt(xx * yy), 1e-12);
    }
}

/// <summary>Reads <c>{"texts": [...]}</c> or a bare string.</summary>
public sealed class EmbedRequestConverter : JsonConverter<EmbedRequest>
{
    public override EmbedRequest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
            return new EmbedRequest([reader.GetString()!]);
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new JsonException("expected {\"texts\": [\"...\"]} or a JSON string.");
        List<string>? texts = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = reader.GetString();
            reader.Read();
            if (string.Equals(name, "texts", StringComparison.OrdinalIgnoreCase))
                texts = JsonSerializer.Deserialize<List<string>>(ref reader, options) ?? throw new JsonException("'texts' is null; send an array of strings.");
            else
                reader.Skip();
        }
        return new EmbedRequest(texts ?? throw new JsonException("missing 'texts'; send {\"texts\": [\"...\"]} or a JSON string."));
    }

    public override void Write(Utf8JsonWriter writer, EmbedRequest value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WritePropertyName("texts");
        JsonSerializer.Serialize(writer, value.Texts, options);
        writer.WriteEndObject();
    }
}

/// <summary>The application, for <c>serve run</c> (serve.yaml) and for Program.cs.</summary>
public static class Apps
{
    public static Application<EmbeddingServiceHandle> Embeddings() => EmbeddingService.Bind(MiniLM.Bind());
}
