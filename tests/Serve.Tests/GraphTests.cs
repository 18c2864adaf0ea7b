using System.Net;
using System.Text;
using Serve.Config;
using Serve.Tests.Graphs;

namespace Serve.Tests;

public class GraphTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static GraphNode<int, int> SeedGraph()
    {
        var input = new InputNode<int>();
        return Model.Bind(increment: 2).Predict(PreprocessDeployment.Bind(input));
    }

    [Fact]
    public async Task Seed_example_preprocess_then_model_maps_1_to_4_through_the_driver_handle()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        DagDriverHandle<int, int> graph = await serve.RunAsync(DagDriver.Bind(SeedGraph())).WaitAsync(Bound);

        Assert.Equal(4, await graph.CallAsync(1));
        Assert.Equal(12, await graph.CallAsync(9));
        Assert.Equal(["DagDriver", "Model", "Preprocess"], serve.ListDeployments().Select(d => d.Name).Order());
        Assert.True(serve.GetDeployment("DagDriver").IsIngress);
        // The graph's deployments are ordinary deployments: a handle to one calls it directly.
        Assert.Equal(5, await serve.GetHandle<ModelHandle>("Model").PredictAsync(3));
    }

    [Fact]
    public async Task Seed_example_over_http_when_the_driver_is_the_ingress()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Port = 0);
        await serve.RunAsync(DagDriver.Bind(SeedGraph()), new RunOptions { RoutePrefix = "/graph" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress };

        using var response = await http.PostAsync("/graph", new StringContent("1", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("4", await response.Content.ReadAsStringAsync());

        using var bad = await http.PostAsync("/graph", new StringContent("\"one\"", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("Int32", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Constants_select_and_several_arguments_build_a_typed_graph()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var input = new InputNode<Order>();
        var math = Arithmetic.Bind();
        var total = math.MultiplyAsync(input.Select(o => o.Quantity), input.Select(o => o.Price));
        var withShipping = math.Add(total, 5);                       // 5 is a constant node
        var output = math.Describe(withShipping, "EUR");

        var graph = await serve.RunAsync(DagDriver.Bind(output)).WaitAsync(Bound);

        Assert.Equal("65 EUR", await graph.CallAsync(new Order(3, 20)));
        Assert.Single(serve.GetDeployment("Arithmetic").Replicas);
    }

    [Fact]
    public async Task A_node_used_twice_is_evaluated_once_per_request()
    {
        var key = Guid.NewGuid().ToString("N");
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var input = new InputNode<int>();
        var counted = Counter.Bind().Count(key, input);
        var output = Arithmetic.Bind().Add(counted, counted);

        var graph = await serve.RunAsync(DagDriver.Bind(output)).WaitAsync(Bound);

        Assert.Equal(14, await graph.CallAsync(7));
        Assert.Equal(1, Counter.Calls[key]);
        Assert.Equal(4, await graph.CallAsync(2));
        Assert.Equal(2, Counter.Calls[key]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Independent_branches_run_at_the_same_time(bool blocking)
    {
        var left = "L" + Guid.NewGuid().ToString("N");
        var right = "R" + Guid.NewGuid().ToString("N");
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var input = new InputNode<int>();
        var a = Rendezvous.Bind(left, right).WithOptions(o => o.Name = "Left");
        var b = Rendezvous.Bind(right, left).WithOptions(o => o.Name = "Right");
        var output = blocking
            ? Arithmetic.Bind().Add(a.MeetBlocking(input), b.MeetBlocking(input))
            : Arithmetic.Bind().Add(a.MeetAsync(input), b.MeetAsync(input));

        var graph = await serve.RunAsync(DagDriver.Bind(output)).WaitAsync(Bound);

        // Each branch waits for the other; sequential evaluation would fail with a TimeoutException.
        Assert.Equal(6, await graph.CallAsync(3).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_failing_call_fails_the_request_with_the_user_exception_and_the_driver_keeps_serving()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var input = new InputNode<int>();
        var math = Arithmetic.Bind();
        var output = math.Add(math.Fail(input), PreprocessDeployment.Bind(input));
        var failing = await serve.RunAsync(DagDriver.Bind(output)).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await failing.CallAsync(7));
        Assert.Equal("no 7, sorry", error.Message);

        var ok = await serve.RunAsync(DagDriver.Bind(SeedGraph()), new RunOptions { Name = "ok", RoutePrefix = "/ok" }).WaitAsync(Bound);
        Assert.Equal(4, await ok.CallAsync(1));
    }

    [Fact]
    public async Task Calls_go_through_the_deployment_router_so_its_limits_apply()
    {
        var key = Guid.NewGuid().ToString("N");
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        var input = new InputNode<int>();
        var graph = await serve.RunAsync(DagDriver.Bind(Slow.Bind().HoldAsync(key, input))).WaitAsync(Bound);

        using var cts = new CancellationTokenSource();
        var first = graph.CallAsync(1, cts.Token).AsTask();
        await Slow.Started.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(Bound);

        // Slow admits one call and queues none: a second request is refused by Slow's router.
        await Assert.ThrowsAsync<BackPressureException>(async () => await graph.CallAsync(2));

        // Cancelling the driver call cancels the token the running deployment call sees.
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.WaitAsync(Bound));
        Assert.True(await Slow.Cancelled.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(Bound));
    }

    [Fact]
    public async Task Redeploying_the_same_graph_keeps_the_driver_replica()
    {
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.RunAsync(DagDriver.Bind(SeedGraph())).WaitAsync(Bound);
        var before = serve.GetDeployment("DagDriver").Replicas.Select(r => r.ReplicaId).ToArray();

        var again = await serve.RunAsync(DagDriver.Bind(SeedGraph())).WaitAsync(Bound);

        Assert.Equal(before, serve.GetDeployment("DagDriver").Replicas.Select(r => r.ReplicaId).ToArray());
        Assert.Equal(4, await again.CallAsync(1));
    }

    [Fact]
    public async Task A_graph_is_an_application_in_a_config_file_with_per_deployment_overrides()
    {
        var assembly = typeof(GraphApps).Assembly.Location.Replace('\\', '/');
        var config = ServeConfigLoader.LoadText($"""
            applications:
              - name: seed
                route_prefix: /seed
                import: {assembly}:Serve.Tests.Graphs.GraphApps.Seed
                args:
                  increment: 5
                deployments:
                  - name: Model
                    num_replicas: 2
            """, "serve.yaml", yaml: true);
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await serve.ApplyConfigAsync(config).WaitAsync(Bound);

        var graph = serve.GetHandle<DagDriverHandle<int, int>>("DagDriver", "seed");
        Assert.Equal(7, await graph.CallAsync(1));
        Assert.Equal(2, serve.GetDeployment("Model", "seed").Replicas.Count);
    }

    [Fact]
    public void A_graph_with_two_input_nodes_is_refused_with_the_fix()
    {
        var math = Arithmetic.Bind();
        var output = math.Add(new InputNode<int>(), new InputNode<int>());

        var error = Assert.Throws<ArgumentException>(() => DagDriver.Bind(output));
        Assert.Contains("two input nodes", error.Message);
        Assert.Contains("Create one InputNode", error.Message);
    }

    [Fact]
    public void A_null_node_is_refused_naming_the_method_and_parameter()
    {
        var error = Assert.Throws<ArgumentNullException>(() => Arithmetic.Bind().Describe(new InputNode<int>(), (GraphNode<int, string>)null!));
        Assert.Equal("unit", error.ParamName);
        Assert.Contains("Arithmetic.Describe", error.Message);
    }
}
