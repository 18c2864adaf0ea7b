using Serve;
using Serve.Config;

namespace Embeddings.Tests;

/// <summary>The sample's serve.yaml, as <c>serve run</c> loads it (its own host: MiniLM is loaded once more here).</summary>
public sealed class ConfigFileTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_samples_config_file_imports_the_application_and_serves_it()
    {
        var config = ServeConfigLoader.Load(Path.Combine(AppContext.BaseDirectory, "serve.yaml"));
        Assert.Equal(8000, config.Http.Port);
        var app = Assert.Single(config.Applications);
        Assert.Equal("embeddings", app.Name);

        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(Bound);
        await serve.ApplyConfigAsync(config).WaitAsync(Bound);

        var service = serve.GetHandle<EmbeddingServiceHandle>("EmbeddingService", "embeddings");
        var similar = await service.SimilarityAsync("A man is playing a guitar.", "Someone plays the guitar.").AsTask().WaitAsync(Bound);
        Assert.True(similar.Cosine > 0.6, $"cosine {similar.Cosine}");
        Assert.Equal(1, serve.GetDeployment("MiniLM", "embeddings").Options.NumCpus);
    }
}
