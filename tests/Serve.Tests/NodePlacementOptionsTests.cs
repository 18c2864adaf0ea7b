namespace Serve.Tests;

/// <summary>The multi-node placement options on a deployment: attribute, <c>WithOptions</c>, config file, validation.</summary>
public sealed class NodePlacementOptionsTests
{
    [Fact]
    public void Defaults_are_no_cap_and_any_node_and_the_attribute_sets_both()
    {
        var defaults = new DeploymentOptions();
        Assert.Equal(0, defaults.MaxReplicasPerNode);
        Assert.Empty(defaults.NodeSelector);

        var options = PlacedOnGpuNodes.Bind().GetOptions();
        Assert.Equal(1, options.MaxReplicasPerNode);
        Assert.Equal(new Dictionary<string, string> { ["gpu"] = "h100", ["zone"] = "a" }, options.NodeSelector.OrderBy(p => p.Key).ToDictionary());
    }

    [Fact]
    public void WithOptions_copies_and_validates_them_naming_deployment_option_and_value()
    {
        var app = PlacedOnGpuNodes.Bind().WithOptions(o => o.NodeSelector["rack"] = "r1");
        Assert.Equal("r1", app.GetOptions().Clone().NodeSelector["rack"]);
        Assert.False(PlacedOnGpuNodes.Bind().GetOptions().NodeSelector.ContainsKey("rack"));

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PlacedOnGpuNodes.Bind().WithOptions(o => o.MaxReplicasPerNode = -2));
        Assert.Contains("Deployment 'PlacedOnGpuNodes': option MaxReplicasPerNode = -2 is out of range: it must be 0 (no cap, the default) or a positive cap", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => PlacedOnGpuNodes.Bind().WithOptions(o => o.NodeSelector[" "] = "x"));
        Assert.Contains("option NodeSelector = \" \" is out of range: it has an empty label name", e.Message);
    }

    [Fact]
    public void A_config_file_sets_max_replicas_per_node_and_node_selector_and_names_bad_values()
    {
        var dir = Directory.CreateTempSubdirectory("serve-placement-config-").FullName;
        try
        {
            var import = typeof(PlacementApps).Assembly.Location.Replace('\\', '/') + ":Serve.Tests.PlacementApps.App";
            var path = Path.Combine(dir, "serve.yaml");
            File.WriteAllText(path, $"""
                applications:
                  - import: {import}
                    deployments:
                      - name: PlacedOnGpuNodes
                        max_replicas_per_node: 3
                        node_selector: {"{"}zone: b, tier: 2{"}"}
                """);
            var options = Config.ServeConfigLoader.Load(path).Applications[0].Application.GetOptions();
            Assert.Equal(3, options.MaxReplicasPerNode);
            Assert.Equal(new Dictionary<string, string> { ["tier"] = "2", ["zone"] = "b" }, options.NodeSelector.OrderBy(p => p.Key).ToDictionary());

            File.WriteAllText(path, $"""
                applications:
                  - import: {import}
                    deployments:
                      - name: PlacedOnGpuNodes
                        max_replicas_per_node: -1
                        node_selector: zone=a
                """);
            var e = Assert.Throws<Config.ServeConfigException>(() => Config.ServeConfigLoader.Load(path));
            Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].max_replicas_per_node");
            Assert.Contains(e.Errors, x => x.Path == "applications[0].deployments[0].node_selector" && x.Reason.StartsWith("expected a mapping of label name to value"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_single_node_host_ignores_them_and_runs_every_replica()
    {
        // One node: the cap and the selector constrain placement across nodes only; the host still runs every replica.
        await using var serve = await ServeHost.StartAsync(o => o.Http.Enabled = false).WaitAsync(TimeSpan.FromSeconds(30));
        var handle = await serve.RunAsync(PlacedOnGpuNodes.Bind().WithOptions(o => o.NumReplicas = 2), new RunOptions { Name = "placed" })
            .WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(7, await handle.EchoAsync(7).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        var deployment = Assert.Single(Assert.Single(serve.GetStatus().Applications).Deployments);
        Assert.Equal(2, deployment.Replicas.Count);
        Assert.Equal(ServeHealth.Healthy, deployment.Status);
    }
}

public static class PlacementApps
{
    public static Application<PlacedOnGpuNodesHandle> App() => PlacedOnGpuNodes.Bind();
}

[Deployment(MaxReplicasPerNode = 1, NodeSelector = "zone=a, gpu=h100")]
public sealed partial class PlacedOnGpuNodes
{
    public int Echo(int x) => x;
}
