using Serve;

namespace Quickstart;

// 1. Hello world: one class, one call method, bound to a constructor argument.
[Deployment(NumReplicas = 2)]
public partial class Greeter(string msg)
{
    public string Call() => msg;

    public Task<string> Shout(string suffix) => Task.FromResult(msg.ToUpperInvariant() + suffix);
}

// 2. Composition: a small sentiment pipeline. The ingress receives handles to the two models it calls.
[Deployment]
public partial class Tokenizer
{
    public string[] Call(string text) =>
        text.ToLowerInvariant().Split([' ', ',', '.', '!', '?', ';', ':'], StringSplitOptions.RemoveEmptyEntries);
}

public sealed record SentimentConfig(double Threshold);

[Deployment(NumReplicas = 2, MaxOngoingRequests = 16)]
public partial class SentimentModel(ReplicaContext replica) : IReconfigurable<SentimentConfig>
{
    private static readonly Dictionary<string, double> Lexicon = new()
    {
        ["good"] = 1, ["great"] = 2, ["love"] = 2, ["fast"] = 1, ["excellent"] = 2, ["happy"] = 1,
        ["bad"] = -1, ["slow"] = -1, ["hate"] = -2, ["awful"] = -2, ["broken"] = -2, ["sad"] = -1,
    };

    private double _threshold;

    public ValueTask ReconfigureAsync(SentimentConfig config, CancellationToken cancellationToken)
    {
        _threshold = config.Threshold;
        return ValueTask.CompletedTask;
    }

    public Prediction Call(string[] tokens)
    {
        var score = 0.0;
        foreach (var token in tokens)
            score += Lexicon.GetValueOrDefault(token);
        var label = score > _threshold ? "positive" : score < -_threshold ? "negative" : "neutral";
        return new Prediction(label, score, replica.ReplicaId);
    }
}

public sealed record Prediction(string Label, double Score, string Replica);

[Deployment]
public partial class SentimentService(TokenizerHandle tokenizer, SentimentModelHandle model)
{
    public async Task<Prediction> CallAsync(string text, CancellationToken cancellationToken)
    {
        var tokens = await tokenizer.CallAsync(text, cancellationToken);
        return await model.CallAsync(tokens, cancellationToken);
    }
}
