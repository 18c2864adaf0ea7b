using Microsoft.Extensions.DependencyInjection;
using Serve.Control;

namespace Serve.Tests;

/// <summary>
/// The controller's cluster assignment mode (no Orleans here): with a cluster layer registered in the host's services,
/// the replica count of each deployment on this node is what the cluster controller assigned, not NumReplicas.
/// </summary>
public class ClusterAssignmentTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private sealed class FakeCluster : IClusterLayer
    {
        public string NodeId => "node-a";

        public ServeStatus Describe(ServeStatus local) => local with
        {
            Nodes = [new NodeInfo(NodeId, "active", 4, [], new Dictionary<string, double>(), new Dictionary<string, string>(), "") { IsSelf = true }],
        };

        // A controller of one node: the write gets the next revision and is all this node applies.
        public Task<IReadOnlyList<AdminOperation>> RecordAdminAsync(AdminOperation operation, AdminApplied applied, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<AdminOperation>>([operation with { LogId = "log", Revision = applied.Revision + 1 }]);
    }

    private static ServeHost NodeHost() =>
        new(new ServeOptions { Http = { Enabled = false } }, new ServiceCollection().AddSingleton<IClusterLayer, FakeCluster>().BuildServiceProvider());

    private static int Running(ServeHost host, string deployment) =>
        host.LocalStatus.Applications.SelectMany(a => a.Deployments).Single(d => d.Name == deployment).Replicas.Count(r => r.State == ReplicaState.Running);

    [Fact]
    public async Task A_cluster_node_starts_no_replica_until_the_cluster_assigns_it_some()
    {
        var probe = new Probe();
        probe.Release();
        await using var host = NodeHost();

        await host.RunAsync(Holder.Bind(probe).WithOptions(o => o.NumReplicas = 3)).WaitAsync(Bound);

        var deployment = host.GetDeployment("Holder");
        Assert.Empty(deployment.Replicas);
        Assert.Equal(0, deployment.TargetReplicas);
        var registration = Assert.Single(host.ClusterRegistrations);
        Assert.Equal(("default", "Holder", 3, 0), (registration.Application, registration.Deployment, registration.Options.NumReplicas, registration.Revision));
        Assert.Equal(typeof(Holder).FullName, registration.TypeName);

        await host.AssignAsync(new Dictionary<(string, string), int> { [("default", "Holder")] = 2 }, CancellationToken.None).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => Running(host, "Holder") == 2, "two assigned replicas run");
        Assert.Equal(2, host.GetDeployment("Holder").TargetReplicas);
        Assert.Equal(2, host.ClusterRegistrations.Single().Replicas.Length);

        await host.AssignAsync(new Dictionary<(string, string), int>(), CancellationToken.None).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => host.LocalStatus.Applications[0].Deployments[0].Replicas.Count == 0, "an unassigned deployment stops its replicas");
    }

    [Fact]
    public async Task A_redeploy_on_a_node_keeps_the_assigned_count_and_raises_the_revision_the_cluster_adopts()
    {
        var probe = new Probe();
        probe.Release();
        await using var host = NodeHost();
        var app = Holder.Bind(probe).WithOptions(o => o.Version = "v1");
        await host.RunAsync(app).WaitAsync(Bound);
        await host.AssignAsync(new Dictionary<(string, string), int> { [("default", "Holder")] = 2 }, CancellationToken.None).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => Running(host, "Holder") == 2, "two assigned replicas run");

        // Same spec: nothing changes, not even the revision.
        await host.RunAsync(app).WaitAsync(Bound);
        Assert.Equal(0, host.ClusterRegistrations.Single().Revision);

        // A new version rolls over the assigned count (surge, as on one host), not over NumReplicas.
        await host.RunAsync(app.WithOptions(o => { o.Version = "v2"; o.NumReplicas = 5; })).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(
            () => host.LocalStatus.Applications[0].Deployments[0].Replicas is { Count: 2 } replicas && replicas.All(r => r.Version == "v2" && r.State == ReplicaState.Running),
            "two v2 replicas replace the two v1 replicas");
        var registration = host.ClusterRegistrations.Single();
        Assert.Equal(1, registration.Revision);
        Assert.Equal("v2", registration.Version);
        Assert.Equal(5, registration.Options.NumReplicas);
        Assert.Equal(2, registration.Assigned);
    }

    [Fact]
    public async Task A_cluster_node_does_not_refuse_an_application_its_own_resources_cannot_hold()
    {
        // Another node may have the GPUs; the cluster controller reports what fits nowhere.
        await using var host = NodeHost();

        await host.RunAsync(Greeter.Bind("hi").WithOptions(o => o.NumGpus = 1)).WaitAsync(Bound);

        Assert.Equal(0, host.GetDeployment("Greeter").TargetReplicas);
    }

    [Fact]
    public async Task The_status_of_a_cluster_node_is_described_by_the_cluster_layer()
    {
        await using var host = NodeHost();
        await host.RunAsync(Greeter.Bind("hi")).WaitAsync(Bound);

        var status = host.GetStatus();

        Assert.Equal("node-a", Assert.Single(status.Nodes).NodeId);
        Assert.Single(status.Applications);
    }

    [Fact]
    public async Task An_autoscaled_deployment_on_a_cluster_node_reports_its_autoscaler_target_and_runs_the_assigned_count()
    {
        // The cluster runs the largest of the nodes' autoscaler targets; the node runs what it is assigned.
        await using var host = NodeHost();
        await host.RunAsync(Greeter.Bind("hi").WithOptions(o => o.Autoscaling = new AutoscalingOptions { MinReplicas = 1, MaxReplicas = 4, InitialReplicas = 2 })).WaitAsync(Bound);

        var registration = Assert.Single(host.ClusterRegistrations);
        Assert.Equal(2, registration.AutoscaleTarget);
        Assert.NotNull(registration.Options.Autoscaling);
        Assert.Equal(0, host.GetDeployment("Greeter").TargetReplicas);

        await host.AssignAsync(new Dictionary<(string, string), int> { [("default", "Greeter")] = 1 }, CancellationToken.None).WaitAsync(Bound);
        await TestUtil.WaitUntilAsync(() => Running(host, "Greeter") == 1, "the assigned replica runs");
    }

    [Fact]
    public async Task A_single_host_keeps_NumReplicas_and_refuses_assignments()
    {
        await using var host = await ServeHost.StartAsync(o => o.Http.Enabled = false);
        await host.RunAsync(Greeter.Bind("hi").WithOptions(o => o.NumReplicas = 2)).WaitAsync(Bound);

        Assert.Equal(2, host.GetDeployment("Greeter").Replicas.Count);
        Assert.Empty(host.GetStatus().Nodes);
        Assert.Null(host.GetDeployment("Greeter").Replicas[0].Node);
        Assert.Empty(host.ClusterRegistrations);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => host.AssignAsync(new Dictionary<(string, string), int>(), CancellationToken.None));
        Assert.Contains("UseOrleans", e.Message);
    }
}
