using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.TestingHost;
using Serve.Config;
using Serve.Control;

namespace Serve.Orleans.Tests;

/// <summary>A deployment whose answer shows its user_config and the node it runs on.</summary>
[Deployment]
public sealed partial class Tagger([FromServices] NodeName node) : IReconfigurable<string>
{
    private volatile string _tag = "none";

    public string Tag() => $"{_tag}@{node.Value}";

    public ValueTask ReconfigureAsync(string config, CancellationToken cancellationToken)
    {
        _tag = config;
        return default;
    }
}

/// <summary>What the admin writes' config documents import.</summary>
public static class AdminApps
{
    public static Application Tagged() => Tagger.Bind();
}

/// <summary>
/// Admin writes on a cluster node (PUT/DELETE /api/serve/applications) go through the cluster controller's admin log:
/// every node applies them, a late node too; a bad document changes nothing anywhere; a node that fails one says so.
/// </summary>
public sealed class AdminWriteTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static string Document(int replicas, string config) => $"""
        applications:
          - name: tagged
            route_prefix: /tagged
            import: {typeof(AdminApps).Assembly.Location}:Serve.Orleans.Tests.AdminApps.Tagged
            deployments:
              - name: Tagger
                num_replicas: {replicas}
                num_cpus: 1
                user_config: {config}
        """;

    private static async Task<InProcessTestCluster> StartAsync(short silos)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Services.AddSingleton(new NodeName(silo.SiloName));
            if (Environment.GetEnvironmentVariable("SERVE_TEST_LOG") is not null)
                host.Services.AddLogging(b => b.AddSimpleConsole(c => c.SingleLine = true).AddFilter("Orleans", LogLevel.Warning).AddFilter("Serve", LogLevel.Information));
            // Every node serves the admin API on a free port; no node starts with an application: the PUTs bring them.
            host.Services.AddServe(o =>
            {
                o.Http.Enabled = false;
                o.Admin.Enabled = true;
                o.Admin.Port = 0;
                o.Resources.Cpus = 4;
            });
        });
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddServeNode(cluster => cluster.ReplicaRefreshInterval = TimeSpan.FromMilliseconds(100));
            TestSilos.UseShortMembershipProbes(silo);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var first = Serve(Silo(cluster, "Silo_0"));
        await WaitUntilAsync(() => first.GetStatus().Nodes.Count == silos && cluster.Silos.All(s => Serve(s).AdminAddress is not null), $"all {silos} nodes report to the controller");
        return cluster;
    }

    private static ServeHost Serve(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ServeHost>();

    private static InProcessSiloHandle Silo(InProcessTestCluster cluster, string name) =>
        cluster.Silos.Single(s => s.ServiceProvider.GetRequiredService<NodeName>().Value == name);

    private static string NameOf(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<NodeName>().Value;

    private static string NodeOf(InProcessSiloHandle silo) => silo.SiloAddress.ToParsableString();

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while (!condition())
        {
            if (timeout.IsCancellationRequested)
                Assert.Fail($"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    private static async Task<(HttpStatusCode Status, JsonNode Body)> SendAsync(ServeHost node, HttpMethod method, string path, string? yaml = null)
    {
        using var http = new HttpClient { BaseAddress = node.AdminAddress, Timeout = Bound };
        using var request = new HttpRequestMessage(method, path);
        if (yaml is not null)
            request.Content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using var response = await http.SendAsync(request).WaitAsync(Bound);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Bound);
        return (response.StatusCode, JsonNode.Parse(text)!);
    }

    /// <summary>The Tagger deployment as <paramref name="host"/> shows the cluster, or null when it has none.</summary>
    private static DeploymentInfo? TaggerOf(ServeHost host) =>
        host.GetStatus().Applications.SingleOrDefault(a => a.Name == "tagged")?.Deployments.SingleOrDefault(d => d.Name == "Tagger");

    private static int Running(DeploymentInfo? d)
    {
        if (d is null)
            return 0;
        var version = d.Version;
        return d.Replicas.Count(r => r.State == ReplicaState.Running && r.Version == version);
    }

    private static async Task<string> TagFromAsync(ServeHost host) =>
        await host.GetHandle<TaggerHandle>("Tagger", "tagged").TagAsync().AsTask().WaitAsync(Bound);

    /// <summary>Every node shows <paramref name="replicas"/> running replicas with no problem, and its own replicas answer with <paramref name="config"/>.</summary>
    private static async Task WaitForSpecAsync(InProcessTestCluster cluster, int replicas, string config)
    {
        foreach (var silo in cluster.Silos)
        {
            var host = Serve(silo);
            await WaitUntilAsync(() => TaggerOf(host) is { } d && d.TargetReplicas == replicas && Running(d) == replicas && d.Message.Length == 0,
                $"{NameOf(silo)} shows {replicas} running replicas of tagged/Tagger and no problem (last: {TaggerOf(host)?.Message})");
            if (host.LocalStatus.Applications.Single().Deployments.Single().Replicas.Count > 0)
            {
                // A call prefers a replica on its own node: it shows that node's replicas run the new user_config.
                var expected = $"{config}@{NameOf(silo)}";
                using var timeout = new CancellationTokenSource(Bound);
                string last;
                while ((last = await TagFromAsync(host)) != expected)
                {
                    if (timeout.IsCancellationRequested)
                        Assert.Fail($"timed out waiting until a call on {NameOf(silo)} answers {expected} (last: {last})");
                    await Task.Delay(20);
                }
            }
        }
    }

    [Fact]
    public async Task A_put_on_one_node_runs_the_new_spec_on_every_node_and_a_node_started_later_converges()
    {
        await using var cluster = await StartAsync(3);
        var first = Serve(Silo(cluster, "Silo_0"));

        var (status, body) = await SendAsync(first, HttpMethod.Put, "/api/serve/applications", Document(3, "v1"));
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        await WaitForSpecAsync(cluster, 3, "v1");

        // A PUT changing num_replicas and user_config on node 0: the other nodes apply it too, so none runs another
        // spec (no "runs version … the cluster runs …" message) and the cluster runs the count the PUT says.
        (status, body) = await SendAsync(first, HttpMethod.Put, "/api/serve/applications", Document(6, "v2"));
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        Assert.Equal("tagged", (string)body["applications"]![0]!["name"]!);
        await WaitForSpecAsync(cluster, 6, "v2");
        Assert.All(cluster.Silos, s => Assert.Equal(2, Serve(s).LocalStatus.Applications.Single().Deployments.Single().Replicas.Count));
        Assert.All(cluster.Silos, s => Assert.Equal(first.AdminWrites.Applied, Serve(s).AdminWrites.Applied));
        await WaitUntilAsync(() => first.GetStatus().Nodes.All(n => n.Message.Length == 0), "no node reports a problem");

        // A node started after the PUT applies the admin log when it joins.
        var late = await cluster.StartAdditionalSiloAsync();
        var lateHost = Serve(late);
        await WaitUntilAsync(() => lateHost.AdminWrites.Applied == first.AdminWrites.Applied && TaggerOf(lateHost) is { Message.Length: 0 } d && Running(d) == 6,
            $"the late node applies the admin log and shows the cluster's 6 replicas (last: {TaggerOf(lateHost)?.Message})");
        Assert.Contains("\"v2\"", lateHost.ClusterRegistrations.Single().ConfigJson);
        Assert.Equal("", lateHost.AdminWrites.Error);
        await WaitUntilAsync(() => first.GetStatus().Nodes.Count == 4 && first.GetStatus().Nodes.All(n => n.Message.Length == 0), "no node reports a problem");
        Assert.StartsWith("v2@", await TagFromAsync(lateHost));
    }

    [Fact]
    public async Task A_bad_document_is_400_and_changes_nothing_and_a_delete_on_another_node_removes_the_application_everywhere()
    {
        await using var cluster = await StartAsync(3);
        var first = Serve(Silo(cluster, "Silo_0"));
        var (status, body) = await SendAsync(first, HttpMethod.Put, "/api/serve/applications", Document(3, "v1"));
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        await WaitForSpecAsync(cluster, 3, "v1");
        var applied = first.AdminWrites.Applied;

        (status, body) = await SendAsync(Serve(Silo(cluster, "Silo_2")), HttpMethod.Put, "/api/serve/applications", Document(3, "v1").Replace("num_replicas: 3", "num_replicas: two"));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("applications[0].deployments[0].num_replicas", (string)body["message"]!);
        Assert.All(cluster.Silos, s => Assert.Equal(applied, Serve(s).AdminWrites.Applied));
        Assert.Equal(3, Running(TaggerOf(first)));

        var second = Serve(Silo(cluster, "Silo_1"));
        (status, body) = await SendAsync(second, HttpMethod.Delete, "/api/serve/applications/tagged");

        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        Assert.Empty(body["applications"]!.AsArray());
        foreach (var silo in cluster.Silos)
        {
            var host = Serve(silo);
            await WaitUntilAsync(() => host.GetStatus().Applications.Count == 0 && host.LocalStatus.Applications.Count == 0, $"{NameOf(silo)} deleted the application and stopped its replicas");
            var view = silo.ServiceProvider.GetRequiredService<ClusterStatus>();
            await WaitUntilAsync(() => view.View.Deployments.Length == 0 && view.View.Nodes.All(n => n.Message.Length == 0), $"{NameOf(silo)}'s view of the cluster has no deployment and no problem");
        }
        // A delete of an application no node has is 404 and recorded nowhere.
        var before = first.AdminWrites.Applied;
        (status, body) = await SendAsync(first, HttpMethod.Delete, "/api/serve/applications/tagged");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("No application named 'tagged'", (string)body["message"]!);
        Assert.Equal(before, first.AdminWrites.Applied);
    }

    [Fact]
    public async Task A_document_whose_import_fails_on_one_node_is_reported_by_that_node_and_not_retried()
    {
        await using var cluster = await StartAsync(3);
        var first = Serve(Silo(cluster, "Silo_0"));
        var broken = Silo(cluster, "Silo_2");
        // That node's assemblies lack the imported type (the loader's answer there, as on a node deployed without the DLL).
        var loads = 0;
        Serve(broken).AdminWrites.LoadDocument = (_, source, _) =>
        {
            Interlocked.Increment(ref loads);
            throw new ServeConfigException(source, [new ServeConfigError("applications[0].import", "assembly not found: /srv/app/Missing.dll")]);
        };

        var (status, body) = await SendAsync(first, HttpMethod.Put, "/api/serve/applications", Document(3, "v1"));
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        var revision = first.AdminWrites.Applied.Revision;

        var expected = $"Node {NodeOf(broken)} failed admin operation {revision} (PUT of a config document listing 'tagged', received by node {NodeOf(Silo(cluster, "Silo_0"))}): " +
                       $"admin operation {revision} (PUT on node {NodeOf(Silo(cluster, "Silo_0"))}): applications[0].import: assembly not found: /srv/app/Missing.dll";
        foreach (var silo in cluster.Silos)
        {
            var host = Serve(silo);
            await WaitUntilAsync(() => host.GetStatus().Nodes.SingleOrDefault(n => n.NodeId == NodeOf(broken))?.Message.Contains(expected) == true,
                $"{NameOf(silo)}'s status names the failing node, the operation and the error (last: {host.GetStatus().Nodes.SingleOrDefault(n => n.NodeId == NodeOf(broken))?.Message})");
        }
        Assert.StartsWith(expected, Serve(broken).AdminWrites.Error);
        // The others run the application; the failing node runs none of it and is not asked again.
        await WaitUntilAsync(() => Running(TaggerOf(first)) == 3, "the two other nodes run the three replicas");
        Assert.Empty(Serve(broken).LocalStatus.Applications);
        await Task.Delay(500);
        Assert.Equal(1, Volatile.Read(ref loads));
        Assert.Equal(revision, Serve(broken).AdminWrites.Applied.Revision);

        // The node keeps applying later writes: a delete of everything reaches it and clears its error.
        (status, body) = await SendAsync(first, HttpMethod.Delete, "/api/serve/applications");
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        await WaitUntilAsync(() => Serve(broken).AdminWrites.Applied == first.AdminWrites.Applied && Serve(broken).AdminWrites.Error == "", "the failing node applies the next write");
    }
}

/// <summary>A node's admin applier with a fake cluster layer, without Orleans: the log applied in order and once, a controller that cannot be reached.</summary>
public sealed class AdminApplierTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>A controller of one node: a write gets the next revision and is all this node applies.</summary>
    private sealed class OneNodeCluster : IClusterLayer
    {
        public string NodeId => "node-a";

        public ServeStatus Describe(ServeStatus local) => local;

        public Task<IReadOnlyList<AdminOperation>> RecordAdminAsync(AdminOperation operation, AdminApplied applied, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<AdminOperation>>([operation with { LogId = "log", Revision = applied.Revision + 1 }]);
    }

    private static string App(string name) =>
        $"applications:\n  - name: {name}\n    route_prefix: /{name}\n    import: {typeof(AdminApps).Assembly.Location}:Serve.Orleans.Tests.AdminApps.Tagged\n";

    [Fact]
    public async Task Logged_writes_apply_in_order_and_once_and_a_failing_one_is_reported_and_not_retried()
    {
        var services = new ServiceCollection().AddSingleton<IClusterLayer>(new OneNodeCluster()).AddSingleton(new NodeName("node-a")).BuildServiceProvider();
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Services = services;
        }).WaitAsync(Bound);
        var put = new AdminOperation("log", 1, App("a") + App("b")["applications:\n".Length..], true, null, ["a", "b"], "node-b");
        var broken = new AdminOperation("log", 2, "applications:\n  - name: c\n    import: /nowhere/Missing.dll:Serve.Apps.Build\n", true, null, ["c"], "node-b");
        var delete = new AdminOperation("log", 3, null, false, "a", ["a"], "node-b");

        await serve.AdminWrites.ApplyLogAsync([put], CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(new[] { "a", "b" }, serve.GetStatus().Applications.Select(a => a.Name).Order());

        // The PUT is applied already and skipped; the broken one fails on this node: reported, marked applied, the apps unchanged.
        await serve.AdminWrites.ApplyLogAsync([put, broken], CancellationToken.None).WaitAsync(Bound);
        Assert.StartsWith("Node node-a failed admin operation 2 (PUT of a config document listing 'c', received by node node-b): " +
                          "admin operation 2 (PUT on node node-b): applications[0].import: assembly not found: /nowhere/Missing.dll", serve.AdminWrites.Error);
        Assert.Contains("It is not retried", serve.AdminWrites.Error);
        Assert.Equal(new AdminApplied("log", 2), serve.AdminWrites.Applied);
        Assert.Equal(new[] { "a", "b" }, serve.GetStatus().Applications.Select(a => a.Name).Order());

        // Only what follows is applied next: the delete, not the broken PUT again.
        await serve.AdminWrites.ApplyLogAsync([put, broken, delete], CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(new[] { "b" }, serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal(new AdminApplied("log", 3), serve.AdminWrites.Applied);

        // A write this node receives itself gets the next revision and clears the error once it applies.
        var config = ServeConfigLoader.LoadText(App("d"), "request body", yaml: true);
        await serve.AdminWrites.PutAsync(config, App("d"), yaml: true, CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(new[] { "d" }, serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal(new AdminApplied("log", 4), serve.AdminWrites.Applied);
        Assert.Equal("", serve.AdminWrites.Error);
    }

    private sealed class UnreachableCluster : IClusterLayer
    {
        public string NodeId => "node-a";

        public ServeStatus Describe(ServeStatus local) => local;

        public Task<IReadOnlyList<AdminOperation>> RecordAdminAsync(AdminOperation operation, AdminApplied applied, CancellationToken cancellationToken) =>
            Task.FromException<IReadOnlyList<AdminOperation>>(new ClusterUnavailableException(
                $"Node node-a cannot reach the Serve cluster controller to record this {operation.Describe()} (TimeoutException: no answer); nothing was changed on any node."));
    }

    [Fact]
    public async Task Put_and_delete_answer_503_naming_the_problem_and_change_nothing()
    {
        var services = new ServiceCollection().AddSingleton<IClusterLayer>(new UnreachableCluster()).AddSingleton(new NodeName("node-a")).BuildServiceProvider();
        await using var serve = await ServeHost.StartAsync(o =>
        {
            o.Http.Enabled = false;
            o.Admin.Enabled = true;
            o.Admin.Port = 0;
            o.Services = services;
        }).WaitAsync(Bound);
        await serve.RunAsync(Tagger.Bind(), new RunOptions { Name = "kept" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.AdminAddress, Timeout = Bound };

        var yaml = $"applications:\n  - name: other\n    import: {typeof(AdminApps).Assembly.Location}:Serve.Orleans.Tests.AdminApps.Tagged\n";
        using var put = await http.PutAsync("/api/serve/applications", new StringContent(yaml, Encoding.UTF8, "application/yaml")).WaitAsync(Bound);
        var putBody = JsonNode.Parse(await put.Content.ReadAsStringAsync())!;
        using var delete = await http.DeleteAsync("/api/serve/applications/kept").WaitAsync(Bound);
        var deleteBody = JsonNode.Parse(await delete.Content.ReadAsStringAsync())!;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, put.StatusCode);
        Assert.Equal("Node node-a cannot reach the Serve cluster controller to record this PUT of a config document listing 'other' (TimeoutException: no answer); nothing was changed on any node.", (string)putBody["message"]!);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, delete.StatusCode);
        Assert.Contains("DELETE of application 'kept'", (string)deleteBody["message"]!);
        Assert.Equal(new[] { "kept" }, serve.GetStatus().Applications.Select(a => a.Name));
        Assert.Equal(AdminApplied.None, serve.AdminWrites.Applied);
    }
}

/// <summary>The controller's admin log on its own: ordered revisions, a PUT superseding everything before it, bounded.</summary>
public sealed class AdminLogTests
{
    private static AdminLogEntry Put(params string[] apps) => new(0, "applications: []", true, null, apps, "n0", DateTime.UtcNow);

    private static AdminLogEntry Delete(string? app) => new(0, null, false, app, app is null ? [] : [app], "n1", DateTime.UtcNow);

    [Fact]
    public void Revisions_grow_and_a_put_supersedes_everything_before_it()
    {
        var log = new AdminLog();
        Assert.Equal(1, log.Append(Put("a", "b")).Revision);
        Assert.Equal(2, log.Append(Delete("a")).Revision);
        Assert.Equal(3, log.Append(Put("c")).Revision);
        Assert.Equal(4, log.Append(Delete("c")).Revision);

        Assert.Equal(new long[] { 3, 4 }, log.Entries.Select(e => e.Revision));
        Assert.NotEmpty(log.LogId);
    }

    [Fact]
    public void The_log_stays_bounded_one_delete_per_name_after_the_last_base()
    {
        var log = new AdminLog();
        log.Append(Put("a", "b"));
        for (var i = 0; i < 1000; i++)
        {
            log.Append(Delete("a"));
            log.Append(Delete("b"));
        }
        Assert.Equal(3, log.Entries.Count);
        Assert.Equal(new long[] { 1, 2000, 2001 }, log.Entries.Select(e => e.Revision));

        log.Append(Delete(null));
        Assert.Single(log.Entries);
        Assert.Equal(2002, log.Revision);
    }

    [Fact]
    public void Pending_is_what_a_node_has_not_applied_in_order_and_all_of_another_log()
    {
        var log = new AdminLog();
        log.Append(Put("a"));
        log.Append(Delete("x"));
        log.Append(Delete("y"));

        Assert.Equal(new long[] { 2, 3 }, log.Pending(log.LogId, 1).Select(e => e.Revision));
        Assert.Empty(log.Pending(log.LogId, 3));
        // A node that applied only operations superseded since gets the last PUT and what follows.
        Assert.Equal(new long[] { 1, 2, 3 }, log.Pending(log.LogId, 0).Select(e => e.Revision));
        // A node that knows another log (the controller lost its storage) applies this one whole.
        Assert.Equal(new long[] { 1, 2, 3 }, log.Pending("an-older-log", 7).Select(e => e.Revision));
        Assert.Empty(new AdminLog().Pending("", 0));
    }

    [Fact]
    public void Allows_says_which_applications_the_writes_leave()
    {
        var log = new AdminLog();
        Assert.True(log.Allows("anything"));
        log.Append(Delete("x"));
        Assert.False(log.Allows("x"));
        Assert.True(log.Allows("y"));
        log.Append(Put("x", "y"));
        Assert.True(log.Allows("x"));
        Assert.False(log.Allows("z"));
        log.Append(Delete("y"));
        Assert.False(log.Allows("y"));
        log.Append(Delete(null));
        Assert.False(log.Allows("x"));
    }
}
