using Quickstart;
using Serve;

// An embedded Serve host: everything runs in this process. Its HTTP ingress listens on http://127.0.0.1:8000
// (o.Http.Port = 0 picks a free port; o.Http.Enabled = false runs without HTTP).
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

// 5. HTTP: each application's ingress is served under its route prefix.
using (var http = new HttpClient { BaseAddress = serve.HttpAddress })
{
    Console.WriteLine($"GET  {serve.HttpAddress}            -> {await http.GetStringAsync("/")}");
    var posted = await http.PostAsync("/sentiment", new StringContent("\"I love this phone\"", System.Text.Encoding.UTF8, "application/json"));
    Console.WriteLine($"POST {serve.HttpAddress}sentiment   -> {await posted.Content.ReadAsStringAsync()}");
}

Console.WriteLine();
Console.WriteLine("status:");
foreach (var a in serve.GetStatus().Applications)
{
    Console.WriteLine($"  application {a.Name}: {a.Status}");
    foreach (var d in a.Deployments)
        Console.WriteLine($"    {d.Name,-16} {d.Status,-8} version {d.Version}  replicas: {string.Join(", ", d.Replicas.Select(r => $"{r.ReplicaId} ({r.State})"))}");
}

await serve.ShutdownAsync();
Console.WriteLine("shut down: in-flight calls drained, replicas disposed.");
