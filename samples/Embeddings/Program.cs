using Embeddings;
using Serve;

// An embedded Serve host serving all-MiniLM-L6-v2 (ONNX Runtime) behind POST /embed and GET /similarity.
// The same application runs from a config file: dotnet build samples/Embeddings, then
//   dotnet run --project src/Serve.Cli -- run samples/Embeddings/bin/Debug/net10.0/serve.yaml
await using var serve = await ServeHost.StartAsync();
Console.WriteLine($"HTTP ingress on {serve.HttpAddress}");

var handle = await serve.RunAsync(Apps.Embeddings(), new RunOptions { Name = "embeddings", RoutePrefix = "/" });
var model = serve.GetHandle<MiniLMHandle>("MiniLM", "embeddings");

// A check that runs with the sample: paraphrases are closer than unrelated sentences.
var failures = new List<string>();
var paraphrase = await handle.SimilarityAsync("A man is playing a guitar.", "Someone plays the guitar.");
var unrelated = await handle.SimilarityAsync("A man is playing a guitar.", "The stock market fell sharply today.");
Console.WriteLine($"similarity(paraphrase) = {paraphrase.Cosine:0.000}");
Console.WriteLine($"similarity(unrelated)  = {unrelated.Cosine:0.000}");
if (paraphrase.Cosine <= unrelated.Cosine)
    failures.Add($"paraphrases scored {paraphrase.Cosine:0.000}, not above the unrelated pair's {unrelated.Cosine:0.000}.");

// 64 concurrent one-sentence calls share batches of up to 32 on the replica.
var sentences = Enumerable.Range(0, 64).Select(i => $"sentence number {i} about serving models").ToArray();
var vectors = await Task.WhenAll(sentences.Select(s => model.EmbedAsync(s).AsTask()));
Console.WriteLine($"embedded {vectors.Length} concurrent sentences, {vectors[0].Length} dimensions each");

var url = serve.HttpAddress!.ToString().TrimEnd('/');
Console.WriteLine();
Console.WriteLine("Try it:");
Console.WriteLine($"  curl -X POST {url}/embed -H 'content-type: application/json' -d '{{\"texts\": [\"A man is playing a guitar.\", \"Someone plays the guitar.\"]}}'");
Console.WriteLine($"  curl -X POST {url}/embed -H 'content-type: application/json' -d '\"one sentence\"'");
Console.WriteLine($"  curl '{url}/similarity?a=A%20man%20is%20playing%20a%20guitar.&b=Someone%20plays%20the%20guitar.'");

if (failures.Count > 0)
{
    await serve.ShutdownAsync();
    foreach (var failure in failures)
        Console.Error.WriteLine($"FAILED: {failure}");
    return 1;
}

// A real service keeps serving until Ctrl-C (or SIGTERM); `--once` ends here, for scripted checks.
if (!args.Contains("--once"))
{
    var stop = new TaskCompletionSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.TrySetResult(); };
    using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
        System.Runtime.InteropServices.PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult(); });
    Console.WriteLine();
    Console.WriteLine($"Serving on {serve.HttpAddress} — press Ctrl-C to stop.");
    await stop.Task;
}

await serve.ShutdownAsync();
return 0;
