using System.Net;
using System.Text;
using Serve.Replicas;

namespace Serve.Onnx.Tests;

public sealed class OnnxSessionTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly string _model = TinyOnnx.WriteDoubler();

    public void Dispose() => File.Delete(_model);

    private static Task<ServeHost> StartAsync(bool http = false) =>
        ServeHost.StartAsync(o => { o.Http.Enabled = http; if (http) o.Http.Port = 0; });

    private static Application<DoublerHandle> Version(string path, DoublerProbe probe, string version) =>
        Doubler.Bind(path, probe).WithOptions(o => o.Version = version);

    [Fact]
    public async Task A_replica_session_runs_the_model_with_the_replicas_cpu_threads()
    {
        var probe = new DoublerProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Doubler.Bind(_model, probe).WithOptions(o => o.NumCpus = 2)).WaitAsync(Bound);

        var doubled = await handle.RunAsync(new DoubleRequest([1, 2, 3, 4, 5, 6, 7, 8], 2, 4)).AsTask().WaitAsync(Bound);

        Assert.Equal([2f, 4, 6, 8, 10, 12, 14, 16], doubled);
        Assert.Equal((2, 1), Assert.Single(probe.Threads));
    }

    [Fact]
    public async Task NumCpus_zero_gives_the_session_every_processor()
    {
        var probe = new DoublerProbe();
        await using var serve = await StartAsync();
        await serve.RunAsync(Doubler.Bind(_model, probe).WithOptions(o => o.NumCpus = 0)).WaitAsync(Bound);

        Assert.Equal((Environment.ProcessorCount, 1), Assert.Single(probe.Threads));
    }

    [Fact]
    public async Task The_session_is_disposed_when_the_replica_stops()
    {
        var probe = new DoublerProbe();
        var serve = await StartAsync();
        await serve.RunAsync(Version(_model, probe, "v1")).WaitAsync(Bound);
        var session = Assert.Single(probe.Sessions);
        Assert.False(session.IsDisposed);

        await serve.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.True(session.IsDisposed);
    }

    [Fact]
    public async Task A_wrong_shape_is_an_OnnxInputException_naming_the_input_the_expected_and_the_received_shape()
    {
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Doubler.Bind(_model, new DoublerProbe())).WaitAsync(Bound);

        var error = await Assert.ThrowsAsync<OnnxInputException>(() => handle.RunAsync(new DoubleRequest([1, 2, 3], 1, 3)).AsTask().WaitAsync(Bound));

        Assert.Equal("x", error.InputName);
        Assert.Equal("float [batch, 4]", error.Expected);
        Assert.Equal("float [1, 3]", error.Received);
        Assert.Contains("Deployment 'Doubler'", error.Message);
        Assert.Contains("input 'x' expects float [batch, 4] but received float [1, 3]", error.Message);
    }

    [Fact]
    public async Task A_wrong_element_type_or_an_unknown_input_name_is_an_OnnxInputException()
    {
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Doubler.Bind(_model, new DoublerProbe())).WaitAsync(Bound);

        var type = await Assert.ThrowsAsync<OnnxInputException>(() => handle.RunAsLongsAsync([1, 2, 3, 4]).AsTask().WaitAsync(Bound));
        Assert.Contains("input 'x' expects float [batch, 4] but received int64 [1, 4]", type.Message);

        var name = await Assert.ThrowsAsync<OnnxInputException>(() => handle.RunNamedAsync("input_ids", [1, 2, 3, 4]).AsTask().WaitAsync(Bound));
        Assert.Contains("has no input 'input_ids'", name.Message);
        Assert.Contains("its inputs are 'x' float [batch, 4]", name.Message);

        // The replica is fine afterwards.
        Assert.Equal(new[] { 2f, 4, 6, 8 }, await handle.RunAsync(new DoubleRequest([1, 2, 3, 4], 1, 4)).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task Over_http_a_wrong_shape_is_400_naming_the_input_and_both_shapes()
    {
        await using var serve = await StartAsync(http: true);
        await serve.RunAsync(Doubler.Bind(_model, new DoublerProbe()), new RunOptions { Name = "onnx", RoutePrefix = "/onnx" }).WaitAsync(Bound);
        using var http = new HttpClient { BaseAddress = serve.HttpAddress, Timeout = Bound };

        var bad = await http.PostAsync("/onnx/double", new StringContent("""{"values":[1,2,3],"rows":1,"columns":3}""", Encoding.UTF8, "application/json")).WaitAsync(Bound);
        var body = await bad.Content.ReadAsStringAsync().WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("Bad request: Deployment 'Doubler': model '", body);
        Assert.Contains("input 'x' expects float [batch, 4] but received float [1, 3]", body);

        var good = await http.PostAsync("/onnx/double", new StringContent("""{"values":[1,2,3,4],"rows":1,"columns":4}""", Encoding.UTF8, "application/json")).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        Assert.Equal("[2,4,6,8]", await good.Content.ReadAsStringAsync().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_missing_model_fails_the_deploy_with_the_path_and_the_old_version_keeps_serving()
    {
        var probe = new DoublerProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Version(_model, probe, "v1")).WaitAsync(Bound);
        var missing = Path.Combine(Path.GetTempPath(), $"serve-missing-{Guid.NewGuid():N}.onnx");

        var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Version(missing, probe, "v2")).WaitAsync(Bound));

        Assert.Contains($"could not open ONNX model '{missing}'", error.Message);
        Assert.Contains("Deployment 'Doubler'", error.Message);
        var cause = Assert.IsType<OnnxModelLoadException>(error.InnerException);
        Assert.Equal(missing, cause.Model);
        Assert.False(string.IsNullOrWhiteSpace(cause.Reason));
        Assert.Equal(new[] { 2f, 4, 6, 8 }, await handle.RunAsync(new DoubleRequest([1, 2, 3, 4], 1, 4)).AsTask().WaitAsync(Bound));
        Assert.All(serve.GetDeployment("Doubler").Replicas, r => Assert.Equal("v1", r.Version));
    }

    [Fact]
    public async Task A_corrupt_model_fails_the_deploy_with_the_path_and_onnx_runtimes_reason()
    {
        var probe = new DoublerProbe();
        await using var serve = await StartAsync();
        var handle = await serve.RunAsync(Version(_model, probe, "v1")).WaitAsync(Bound);
        var corrupt = Path.Combine(Path.GetTempPath(), $"serve-corrupt-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(corrupt, TinyOnnx.Doubler()[..20]);
        try
        {
            var error = await Assert.ThrowsAsync<DeploymentFailedException>(() => serve.RunAsync(Version(corrupt, probe, "v2")).WaitAsync(Bound));

            var cause = Assert.IsType<OnnxModelLoadException>(error.InnerException);
            Assert.Contains($"could not open ONNX model '{corrupt}'", error.Message);
            Assert.Contains(cause.Reason, error.Message);
            Assert.Contains("ErrorCode", cause.Reason); // ONNX Runtime's own words
            Assert.Equal(new[] { 2f, 4, 6, 8 }, await handle.RunAsync(new DoubleRequest([1, 2, 3, 4], 1, 4)).AsTask().WaitAsync(Bound));
        }
        finally
        {
            File.Delete(corrupt);
        }
    }
}
