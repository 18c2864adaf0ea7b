using Quickstart;
using Serve;

// An embedded Serve host: everything runs in this process. Its HTTP ingress listens on http://127.0.0.1:8000
// (o.Http.Port = 0 picks a free port; o.Http.Enabled = false runs without HTTP). Replicas reserve no CPUs unless a
// deployment sets NumCpus (docs/resources.md), so the defaults run on any machine.
await using var serve = await ServeHost.StartAsync();
Console.WriteLine($"HTTP ingress on {serve.HttpAddress}");

// 1. Hello world
GreeterHandle greeter = await serve.RunAsync(Greeter.Bind("Hello world!"), new RunOptions { Name = "hello" });
Console.WriteLine($"greeter.CallAsync()        -> {await greeter.CallAsync()}");
Console.WriteLine($"greeter.ShoutAsync(\"!!\")   -> {await greeter.ShoutAsync("!!")}");

// 2. Composition: deploying the ingress deploys the whole graph.
static Application<SentimentServiceHandle> SentimentApp(double threshold) => SentimentService.Bind(
    Tokenizer.Bind(),
    SentimentModel.Bind().WithOptions(o => o.UserConfig = new SentimentConfig(threshold)));

SentimentServiceHandle sentiment = await serve.RunAsync(SentimentApp(threshold: 0.5), new RunOptions { Name = "sentiment", RoutePrefix = "/sentiment" });
var replicasBefore = serve.GetDeployment("SentimentModel").Replicas.Select(r => r.ReplicaId).Order().ToArray();

string[] reviews =
[
    "I love this phone, the camera is great!",
    "Slow, broken and awful support.",
    "It arrived on Tuesday.",
];
foreach (var review in reviews)
{
    var p = await sentiment.CallAsync(review);
    Console.WriteLine($"sentiment(\"{review}\") -> {p.Label} (score {p.Score}, served by {p.Replica})");
}

// Many concurrent calls are spread over the model's replicas.
var predictions = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => sentiment.CallAsync(reviews[i % 3]).AsTask()));
foreach (var group in predictions.GroupBy(p => p.Replica).OrderBy(g => g.Key))
    Console.WriteLine($"  {group.Key} served {group.Count()} of 200 concurrent calls");

// 3. Redeploy: only the user config changes, so live replicas are reconfigured in place (no restart).
await serve.RunAsync(SentimentApp(threshold: 4.5), new RunOptions { Name = "sentiment", RoutePrefix = "/sentiment" });
var replicasAfter = serve.GetDeployment("SentimentModel").Replicas.Select(r => r.ReplicaId).Order().ToArray();
var strict = await sentiment.CallAsync(reviews[0]);
Console.WriteLine($"after reconfigure (threshold 4.5): \"{reviews[0]}\" -> {strict.Label} (score {strict.Score}); " +
                  $"replicas restarted: {(replicasBefore.SequenceEqual(replicasAfter) ? "none" : "yes")}");

// 4. Scale: more replicas, the existing ones keep running.
await serve.RunAsync(Greeter.Bind("Hello world!").WithOptions(o => o.NumReplicas = 4), new RunOptions { Name = "hello" });

// 5. A small real model: an Iris classifier, trained from samples/data/iris.csv when each replica starts.
// Running the sample is itself a check: it exits with code 1 if the model is not good enough.
var failures = new List<string>();
var irisPath = Path.Combine(AppContext.BaseDirectory, "data", "iris.csv");
IrisClassifierHandle iris = await serve.RunAsync(IrisClassifier.Bind(irisPath), new RunOptions { Name = "iris", RoutePrefix = "/classify" });
var accuracy = await iris.TrainingAccuracyAsync();
Console.WriteLine($"iris: trained on {await iris.TrainingRowsAsync()} flowers, training accuracy {accuracy:P1}");
if (accuracy < 0.9)
    failures.Add($"Iris training accuracy {accuracy:P1} is below 90%.");

(string Expected, double SepalLength, double SepalWidth, double PetalLength, double PetalWidth)[] flowers =
[
    ("setosa", 5.1, 3.5, 1.4, 0.2),
    ("versicolor", 6.4, 3.2, 4.5, 1.5),
    ("virginica", 6.3, 3.3, 6.0, 2.5),
];
foreach (var f in flowers)
{
    var p = await iris.CallAsync(f.SepalLength, f.SepalWidth, f.PetalLength, f.PetalWidth);
    var probabilities = string.Join(", ", p.Probabilities.Select(kv => $"{kv.Key} {kv.Value:0.000}"));
    Console.WriteLine($"iris({f.SepalLength:0.0}, {f.SepalWidth:0.0}, {f.PetalLength:0.0}, {f.PetalWidth:0.0}) -> {p.Species,-10} ({probabilities})");
    if (p.Species != f.Expected)
        failures.Add($"Iris flower ({f.SepalLength}, {f.SepalWidth}, {f.PetalLength}, {f.PetalWidth}) classified as {p.Species}, expected {f.Expected}.");
}

// 6. HTTP: each application's ingress is served under its route prefix.
const string irisJson = "{\"sepalLength\":5.1,\"sepalWidth\":3.5,\"petalLength\":1.4,\"petalWidth\":0.2}";
using (var http = new HttpClient { BaseAddress = serve.HttpAddress })
{
    Console.WriteLine($"GET  {serve.HttpAddress}            -> {await http.GetStringAsync("/")}");
    var posted = await http.PostAsync("/sentiment", new StringContent("\"I love this phone\"", System.Text.Encoding.UTF8, "application/json"));
    Console.WriteLine($"POST {serve.HttpAddress}sentiment   -> {await posted.Content.ReadAsStringAsync()}");
    var classified = await http.PostAsync("/classify", new StringContent(irisJson, System.Text.Encoding.UTF8, "application/json"));
    var classifiedBody = await classified.Content.ReadAsStringAsync();
    Console.WriteLine($"POST {serve.HttpAddress}classify    -> {(int)classified.StatusCode} {classifiedBody}");
    if (!classified.IsSuccessStatusCode || !classifiedBody.Contains("\"species\":\"setosa\"", StringComparison.Ordinal))
        failures.Add($"POST /classify answered {(int)classified.StatusCode} {classifiedBody}, expected species setosa.");
}

// Try them yourself while the host runs:
var examples = new Dictionary<string, string>
{
    ["hello"] = "curl {url}",
    ["sentiment"] = "curl -X POST {url} -H 'content-type: application/json' -d '\"I love this phone\"'",
    ["iris"] = "curl -X POST {url} -H 'content-type: application/json' -d '" + irisJson + "'",
};
Console.WriteLine();
Console.WriteLine("applications:");
foreach (var a in serve.GetStatus().Applications)
{
    var url = new Uri(serve.HttpAddress!, a.RoutePrefix).ToString();
    Console.WriteLine($"  {a.Name,-10} {url}");
    if (examples.TryGetValue(a.Name, out var example))
        Console.WriteLine($"             {example.Replace("{url}", url, StringComparison.Ordinal)}");
}

Console.WriteLine();
Console.WriteLine("status:");
foreach (var a in serve.GetStatus().Applications)
{
    Console.WriteLine($"  application {a.Name}: {a.Status}");
    foreach (var d in a.Deployments)
        Console.WriteLine($"    {d.Name,-16} {d.Status,-8} version {d.Version}  replicas: {string.Join(", ", d.Replicas.Select(r => $"{r.ReplicaId} ({r.State})"))}");
}

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
Console.WriteLine("shut down: in-flight calls drained, replicas disposed.");
return 0;
