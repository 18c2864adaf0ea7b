using Serve.Config;

namespace Serve.Tests;

/// <summary>The config file's <c>cluster</c> section (read here; <c>serve run</c> acts on it) and cluster store addresses.</summary>
public sealed class ClusterConfigTests : IDisposable
{
    private static readonly string TestAssembly = typeof(TestApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cluster-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ServeConfig Load(string cluster)
    {
        var path = Path.Combine(_dir, "serve.yaml");
        File.WriteAllText(path, $"""
            {cluster}
            applications:
              - import: {TestAssembly}:Serve.Tests.TestApps.HelloDefault
            """);
        return ServeConfigLoader.Load(path);
    }

    [Fact]
    public void Every_cluster_key_is_read()
    {
        var config = Load("""
            cluster:
              store: redis://10.0.0.9:6380
              cluster_id: prod-eu
              node_labels: { zone: a, gpus: 2 }
              placement: pack
              silo_port: 11111
              gateway_port: 30000
              advertised_address: 10.0.0.5
              wire_format: json
              drain_timeout_s: 12.5
            """);

        var cluster = Assert.IsType<ClusterConfig>(config.Cluster);
        Assert.Equal("json", cluster.WireFormat);
        Assert.Equal(TimeSpan.FromSeconds(12.5), cluster.DrainTimeout);
        Assert.Equal(new ClusterStoreAddress("10.0.0.9", 6380), cluster.Store);
        Assert.Equal("prod-eu", cluster.ClusterId);
        Assert.Equal("a", cluster.NodeLabels["zone"]);
        Assert.Equal("2", cluster.NodeLabels["gpus"]);
        Assert.Equal("pack", cluster.Placement);
        Assert.Equal(11111, cluster.SiloPort);
        Assert.Equal(30000, cluster.GatewayPort);
        Assert.Equal("10.0.0.5", cluster.AdvertisedAddress);
    }

    [Fact]
    public void Without_a_cluster_section_there_is_none_and_a_section_with_only_a_store_takes_the_defaults()
    {
        Assert.Null(Load("").Cluster);

        var cluster = Load("cluster: { store: redis://localhost }").Cluster!;
        Assert.Equal(new ClusterStoreAddress("localhost", 6379), cluster.Store);
        Assert.Equal("serve", cluster.ClusterId);
        Assert.Empty(cluster.NodeLabels);
        Assert.Null(cluster.Placement);
        Assert.Null(cluster.SiloPort);
        Assert.Null(cluster.GatewayPort);
        Assert.Null(cluster.AdvertisedAddress);
        Assert.Null(cluster.WireFormat);
        Assert.Null(cluster.DrainTimeout);
    }

    [Fact]
    public void Every_bad_cluster_key_is_reported_at_its_key_path()
    {
        var e = Assert.Throws<ServeConfigException>(() => Load("""
            cluster:
              store: 127.0.0.1:6379
              cluster_id: "my cluster"
              node_labels: [zone]
              placement: wide
              silo_port: 70000
              gateway_port: -1
              advertised_address: 0.0.0.0
              wire_format: protobuf
              drain_timeout_s: -1
              storre: redis://127.0.0.1
            """));

        Assert.Equal(
            [
                ("cluster.storre", "unknown key; allowed keys here are store, cluster_id, node_labels, placement, silo_port, gateway_port, advertised_address, wire_format, drain_timeout_s"),
                ("cluster.store", "expected redis://host:port, e.g. redis://127.0.0.1:6379, got \"127.0.0.1:6379\": write the scheme, redis://127.0.0.1:6379"),
                ("cluster.cluster_id", "expected 1 to 100 ASCII letters, digits, '-', '_' or '.', got \"my cluster\""),
                ("cluster.node_labels", "expected a mapping of label name to value (e.g. { zone: a }), got a list"),
                ("cluster.placement", "expected 'spread' (the default: across as many nodes as possible) or 'pack' (on as few nodes as possible), got \"wide\""),
                ("cluster.silo_port", "expected an integer from 0 to 65535 (0 picks a free port), got 70000"),
                ("cluster.gateway_port", "expected an integer from 0 to 65535 (0: no gateway), got -1"),
                ("cluster.advertised_address", "expected the IP address other nodes reach this one at (e.g. \"10.0.0.5\"; not 0.0.0.0 or ::), got \"0.0.0.0\""),
                ("cluster.wire_format", "expected 'messagepack' (the default), 'json' or 'host' (the host's boundary serializer), got \"protobuf\""),
                ("cluster.drain_timeout_s", "expected a number of seconds of 0 or more, at most 4294967 (49 days), got -1"),
            ],
            e.Errors.Select(x => (x.Path, x.Reason)));
        Assert.Contains("serve.yaml: cluster.store: expected redis://host:port", e.Message);
    }

    [Fact]
    public void A_cluster_section_that_is_not_a_mapping_and_equal_ports_are_refused()
    {
        var scalar = Assert.Throws<ServeConfigException>(() => Load("cluster: redis://127.0.0.1:6379"));
        Assert.Equal(("cluster", "expected a mapping with keys store, cluster_id, node_labels, placement, silo_port, gateway_port, advertised_address, wire_format, drain_timeout_s, got \"redis://127.0.0.1:6379\""),
            (Assert.Single(scalar.Errors).Path, scalar.Errors[0].Reason));

        var ports = Assert.Throws<ServeConfigException>(() => Load("cluster: { silo_port: 11111, gateway_port: 11111 }"));
        Assert.Equal(("cluster.gateway_port", "the gateway port 11111 is also the silo_port; give them different ports"), (Assert.Single(ports.Errors).Path, ports.Errors[0].Reason));
    }

    [Theory]
    [InlineData("redis://127.0.0.1:6379", "127.0.0.1", 6379, true)]
    [InlineData("redis://localhost", "localhost", 6379, true)]
    [InlineData("REDIS://redis.internal:7000", "redis.internal", 7000, false)]
    [InlineData("redis://[::1]:6390", "[::1]", 6390, true)]
    [InlineData("redis://10.1.2.3:6379/", "10.1.2.3", 6379, false)]
    public void Store_addresses_parse(string text, string host, int port, bool loopback)
    {
        Assert.True(ClusterStoreAddress.TryParse(text, out var address, out var reason), reason);
        Assert.Equal(host, address!.Host);
        Assert.Equal(port, address.Port);
        Assert.Equal(loopback, address.IsLoopback);
        Assert.Equal($"redis://{host}:{port}", address.ToString());
    }

    [Theory]
    [InlineData("", "got an empty value")]
    [InlineData("localhost:6379", "write the scheme, redis://localhost:6379")]
    [InlineData("http://127.0.0.1:6379", "only Redis is supported as a cluster store")]
    [InlineData("rediss://127.0.0.1:6380", "TLS (rediss://) is not supported yet")]
    [InlineData("redis://", "not a host and port")]
    [InlineData("redis://127.0.0.1:notaport", "not a host and port")]
    [InlineData("redis://127.0.0.1:0", "the port must be from 1 to 65535")]
    [InlineData("redis://127.0.0.1:6379/2", "nothing may follow the port (no database number, path or query)")]
    [InlineData("redis://:secret@127.0.0.1:6379", "user names and passwords in the address are not supported yet")]
    public void Bad_store_addresses_say_what_to_write(string text, string why)
    {
        Assert.False(ClusterStoreAddress.TryParse(text, out var address, out var reason));
        Assert.Null(address);
        Assert.StartsWith("expected redis://host:port, e.g. redis://127.0.0.1:6379, got ", reason);
        Assert.Contains(why, reason);
    }
}
