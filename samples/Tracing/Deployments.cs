using Serve;

namespace Tracing;

/// <summary>Splits a text into lower-case words.</summary>
[Deployment]
public partial class Words
{
    public string[] Call(string text) =>
        text.Split([' ', ',', '.', '!', '?'], StringSplitOptions.RemoveEmptyEntries).Select(w => w.ToLowerInvariant()).ToArray();
}

/// <summary>Scores words against a tiny lexicon; batched, so its batch spans link to the calls they serve.</summary>
[Deployment(MaxOngoingRequests = 32)]
public partial class Lexicon
{
    private static readonly Dictionary<string, int> Scores = new() { ["love"] = 2, ["great"] = 2, ["good"] = 1, ["slow"] = -1, ["awful"] = -2, ["broken"] = -2 };

    [Batch(MaxBatchSize = 16, BatchWaitTimeoutMs = 2)]
    public IReadOnlyList<int> Score(IReadOnlyList<string[]> texts) =>
        texts.Select(words => words.Sum(w => Scores.GetValueOrDefault(w))).ToArray();
}

/// <summary>The ingress: words, then score. Each request is one trace: HTTP span → Review.Call → Words.Call and Lexicon.Score.</summary>
[Deployment]
public partial class Review(WordsHandle words, LexiconHandle lexicon)
{
    public async Task<string> Call(string text)
    {
        var score = await lexicon.ScoreAsync(await words.CallAsync(text));
        return score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
    }
}
