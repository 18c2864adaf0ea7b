using System.Net;
using System.Net.Sockets;
using Serve.Cli;

namespace Serve.Cli.Tests;

/// <summary>
/// <c>serve run --cluster</c> and the config's <c>cluster</c> section when something is wrong: bad settings exit 2 with
/// the flag or key path; a store that cannot be reached exits 3, within bounded time, naming the address, where it
/// came from and what to do.
/// </summary>
public sealed class ClusterRunTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly string Assembly = typeof(CliApps).Assembly.Location.Replace('\\', '/');
    private readonly string _dir = Directory.CreateTempSubdirectory("serve-cli-cluster-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config(string cluster = "")
    {
        var path = Path.Combine(_dir, "serve.yaml");
        File.WriteAllText(path, $"""
            {cluster}
            http: {"{"} host: 127.0.0.1, port: 0 {"}"}
            applications:
              - import: {Assembly}:Serve.Cli.Tests.CliApps.Echo
            """);
        return path;
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(string target, string? cluster)
    {
        var output = new LockedWriter();
        var error = new LockedWriter();
        var code = await RunCommand.ExecuteAsync(target, cluster, output, error, CancellationToken.None, o => o.Admin.Port = 0, started: null).WaitAsync(Bound);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>A loopback port nothing listens on (taken and given back).</summary>
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task Cluster_flag_naming_a_store_where_nothing_listens_fails_start_up_naming_address_and_flag_and_how_to_start_redis()
    {
        var port = ClosedPort();

        var (code, output, error) = await RunAsync(Config(), $"redis://127.0.0.1:{port}");

        Assert.Equal(RunCommand.ClusterUnavailable, code);
        Assert.Equal(
            $"error: cannot reach the cluster store redis://127.0.0.1:{port} (--cluster): connection refused (nothing listens on that port).{Environment.NewLine}" +
            $"Is redis-server running there? Start one with `redis-server --port {port}` (Debian/Ubuntu: `apt-get install redis-server`), " +
            $"or point --cluster at a running Redis (redis://host:port, e.g. redis://127.0.0.1:6379).{Environment.NewLine}",
            error);
        Assert.DoesNotContain("serving at", output);
    }

    [Fact]
    public async Task Cluster_store_from_the_file_that_is_not_redis_names_the_key_and_the_file()
    {
        // Something that answers, but not as Redis does.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var answering = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            await client.GetStream().WriteAsync("HTTP/1.1 400 Bad Request\r\n\r\n"u8.ToArray());
        });
        var config = Config($"cluster: {{ store: redis://127.0.0.1:{port} }}");

        var (code, _, error) = await RunAsync(config, cluster: null);

        Assert.Equal(RunCommand.ClusterUnavailable, code);
        Assert.StartsWith($"error: cannot reach the cluster store redis://127.0.0.1:{port} (cluster.store in {config}): it answered PING with \"HTTP/1.1 400 Bad Request\"; is it a Redis server?", error);
        Assert.Contains("point cluster.store at a running Redis", error);
        await answering.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_store_that_accepts_but_never_answers_fails_start_up_after_the_store_timeout_instead_of_hanging()
    {
        // Listening but never accepting: the connection completes (backlog) and PING is never answered.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var (code, _, error) = await RunAsync(Config(), $"redis://127.0.0.1:{port}");

        Assert.Equal(RunCommand.ClusterUnavailable, code);
        Assert.StartsWith($"error: cannot reach the cluster store redis://127.0.0.1:{port} (--cluster): no answer within 5 s.", error);
    }

    [Theory]
    [InlineData("127.0.0.1:6379", "--cluster: expected redis://host:port, e.g. redis://127.0.0.1:6379, got \"127.0.0.1:6379\": write the scheme, redis://127.0.0.1:6379")]
    [InlineData("redis://127.0.0.1:99999", "--cluster: expected redis://host:port, e.g. redis://127.0.0.1:6379, got \"redis://127.0.0.1:99999\": not a host and port")]
    public async Task A_bad_cluster_flag_exits_2_naming_the_flag_and_the_form_to_write(string flag, string expected)
    {
        var (code, output, error) = await RunAsync(Config(), flag);

        Assert.Equal(RunCommand.InvalidConfig, code);
        Assert.Equal($"error: invalid cluster settings{Environment.NewLine}{expected}{Environment.NewLine}", error);
        Assert.Equal("", output);
    }

    [Fact]
    public async Task A_cluster_section_without_a_store_and_no_flag_exits_2_naming_the_key()
    {
        var config = Config("cluster: { node_labels: { zone: a } }");

        var (code, _, error) = await RunAsync(config, cluster: null);

        Assert.Equal(RunCommand.InvalidConfig, code);
        Assert.Contains($"{config}: cluster.store: missing; set it to the cluster store (redis://host:port, e.g. redis://127.0.0.1:6379) or pass --cluster", error);
    }

    [Fact]
    public async Task A_bad_cluster_key_in_the_file_exits_2_with_its_key_path()
    {
        var config = Config("cluster: { store: redis://127.0.0.1, placement: everywhere }");

        var (code, _, error) = await RunAsync(config, cluster: null);

        Assert.Equal(RunCommand.InvalidConfig, code);
        Assert.Equal($"error: invalid config{Environment.NewLine}{config}: cluster.placement: expected 'spread' (the default: across as many nodes as possible) or 'pack' (on as few nodes as possible), got \"everywhere\"{Environment.NewLine}", error);
    }
}
