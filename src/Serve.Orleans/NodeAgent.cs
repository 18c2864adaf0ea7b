using System.Buffers;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Runtime.Services;
using Serve.CodeGeneration;
using Serve.Isolation;
using Serve.Replicas;

namespace Serve.Orleans;

/// <summary>
/// The Serve agent of one node: lists the replicas this node's host runs, and runs calls that handles on other nodes
/// send them. A call is admitted against the replica's <see cref="DeploymentOptions.MaxOngoingRequests"/>, counted
/// together with local calls; a full replica refuses it (the caller's handle tries elsewhere). Reentrant: calls run
/// concurrently, each on the thread pool, never on the silo's scheduler.
/// </summary>
[Reentrant]
internal sealed class NodeAgent(GrainId id, Silo silo, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, ServeHost host, NodeCalls calls)
    : GrainService(id, silo, loggerFactory), INodeAgent
{
    private readonly NodeCalls _calls = calls;

    public Task<ReplicaListing[]> ListReplicasAsync()
    {
        var listings = new List<ReplicaListing>();
        foreach (var endpoint in host.Endpoints)
        {
            foreach (var replica in endpoint.Router.Replicas)
            {
                if (replica is Replica local)
                    listings.Add(new ReplicaListing(endpoint.ApplicationName, endpoint.DeploymentName, local.ReplicaId, local.Version,
                        local.Models is { } models ? [.. models.ModelIds] : null));
            }
        }
        return Task.FromResult(listings.ToArray());
    }

    public Task<RemoteResult> InvokeAsync(RemoteCall call, CancellationToken cancellationToken) =>
        // Off the silo's scheduler: user code may block, and the thread here is Orleans'.
        Task.Run(() => _calls.RunAsync(call, cancellationToken), CancellationToken.None);

    public Task<RemoteStreamStart> StartStreamAsync(RemoteCall call) =>
        Task.Run(() => _calls.StartStreamAsync(call), CancellationToken.None);

    public Task<RemoteStreamItems> NextItemsAsync(string streamId) =>
        Task.Run(() => _calls.NextItemsAsync(streamId), CancellationToken.None);

    public Task StopStreamAsync(string streamId) =>
        Task.Run(() => _calls.StopStreamAsync(streamId), CancellationToken.None);
}

/// <summary>Runs the calls other nodes send to this node's replicas (outside grain code, so on the thread pool's terms).</summary>
internal sealed class NodeCalls(ServeHost host, WireSerializers wire)
{
    public async Task<RemoteResult> RunAsync(RemoteCall call, CancellationToken cancellationToken)
    {
        if (!host.TryGetEndpoint(call.Application, call.Deployment, out var endpoint) || Find(endpoint.Router, call.ReplicaId) is not { } replica)
            return new RemoteResult(RemoteStatus.Gone, null);
        var router = endpoint.Router;
        if (!replica.TryAcquire(router.MaxOngoing))
            return new RemoteResult(RemoteStatus.Refused, null);
        var started = router.CallStarting();
        var failed = true;
        try
        {
            var method = RemoteMethods.Find(endpoint.Definition, call.MethodId);
            var serializer = wire.For(call.Format);
            var arguments = RemoteMethods.ReadArguments(serializer, call.Deployment, method, call.Arguments);
            // The caller's model id (WithModelId / the multiplexing header) is the call's here too.
            ReplicaContext.EnterModel(call.ModelId);
            var result = await replica.InvokeBoxedAsync(endpoint.Definition, call.MethodId, arguments, offCaller: false, cancellationToken).ConfigureAwait(false);
            var written = RemoteMethods.Write(serializer, result, method.ResultType, call.Deployment, method, RemoteMethods.Result);
            failed = false;
            return new RemoteResult(RemoteStatus.Completed, written);
        }
        finally
        {
            router.Release(replica, started, failed);
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RunningStream> _streams = new(StringComparer.Ordinal);

    /// <summary>A stream another node consumes: its enumerator, the slot it holds, and the token its consumer can cancel.</summary>
    private sealed class RunningStream(IAsyncEnumerator<object?> items, Replica replica, Routing.DeploymentRouter router, long started, CancellationTokenSource stop,
        DeploymentMethod method, string deployment, IBoundarySerializer serializer, string? consumer)
    {
        public string? Consumer { get; } = consumer;
        public IAsyncEnumerator<object?> Items { get; } = items;
        public DeploymentMethod Method { get; } = method;
        public string Deployment { get; } = deployment;
        public IBoundarySerializer Serializer { get; } = serializer;
        public CancellationTokenSource Stop { get; } = stop;
        // One move at a time: a consumer asks for the next items only after it got the last ones.
        public SemaphoreSlim Moving { get; } = new(1, 1);
        // The move started after the last item sent that was not done at once (or failed): the next request awaits it
        // first, and a stop awaits it before disposing (an enumerator must not be disposed mid-move).
        public Task<bool>? Pending { get; set; }
        private int _ended;

        public async ValueTask EndAsync(bool failed)
        {
            if (Interlocked.Exchange(ref _ended, 1) != 0)
                return;
            try
            {
                await Items.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                Stop.Dispose();
                router.Release(replica, started, failed);
            }
        }
    }

    public async Task<RemoteStreamStart> StartStreamAsync(RemoteCall call)
    {
        if (!host.TryGetEndpoint(call.Application, call.Deployment, out var endpoint) || Find(endpoint.Router, call.ReplicaId) is not { } replica)
            return new RemoteStreamStart(RemoteStatus.Gone, null);
        var router = endpoint.Router;
        if (!replica.TryAcquire(router.MaxOngoing))
            return new RemoteStreamStart(RemoteStatus.Refused, null);
        var started = router.CallStarting();
        var stop = new CancellationTokenSource();
        try
        {
            var method = RemoteMethods.Find(endpoint.Definition, call.MethodId);
            var serializer = wire.For(call.Format);
            var arguments = RemoteMethods.ReadArguments(serializer, call.Deployment, method, call.Arguments);
            ReplicaContext.EnterModel(call.ModelId);
            var items = await replica.InvokeBoxedStreamAsync(endpoint.Definition, call.MethodId, arguments, stop.Token).ConfigureAwait(false);
            var id = Guid.NewGuid().ToString("N");
            _streams[id] = new RunningStream(items.GetAsyncEnumerator(stop.Token), replica, router, started, stop, method, call.Deployment, serializer, call.CallerNode);
            return new RemoteStreamStart(RemoteStatus.Completed, id);
        }
        catch
        {
            stop.Dispose();
            router.Release(replica, started, failed: true);
            throw;
        }
    }

    /// <summary>At most this many items per round trip.</summary>
    internal const int MaxItemsPerFetch = 64;

    /// <summary>No further item is added to a round trip once its items reach this many bytes.</summary>
    internal const int MaxBytesPerFetch = 64 * 1024;

    public async Task<RemoteStreamItems> NextItemsAsync(string streamId)
    {
        if (!_streams.TryGetValue(streamId, out var stream))
            throw new InvalidOperationException($"Stream '{streamId}' is not running on this node (it ended or was stopped).");
        await stream.Moving.WaitAsync().ConfigureAwait(false);
        try
        {
            bool more;
            try
            {
                var pending = stream.Pending;
                stream.Pending = null;
                more = pending is null ? await stream.Items.MoveNextAsync().ConfigureAwait(false) : await pending.ConfigureAwait(false);
            }
            catch
            {
                _streams.TryRemove(streamId, out _);
                await stream.EndAsync(failed: true).ConfigureAwait(false);
                throw;
            }
            if (!more)
                return await EndedAsync(streamId, stream, []).ConfigureAwait(false);
            var first = Write(stream);
            // Then the items the producer has ready at once (a move that completes synchronously), bounded; a move that
            // is not done (or failed) waits for the next request, so this one answers now with what it has.
            List<byte[]>? items = null;
            var bytes = first.Length;
            while ((items?.Count ?? 1) < MaxItemsPerFetch && bytes < MaxBytesPerFetch)
            {
                var next = stream.Items.MoveNextAsync();
                if (!next.IsCompletedSuccessfully)
                {
                    stream.Pending = next.AsTask();
                    break;
                }
                items ??= [first];
                if (!next.Result)
                    return await EndedAsync(streamId, stream, [.. items]).ConfigureAwait(false);
                var item = Write(stream);
                items.Add(item);
                bytes += item.Length;
            }
            return new RemoteStreamItems(items is null ? [first] : [.. items], false);
        }
        finally
        {
            stream.Moving.Release();
        }
    }

    private static byte[] Write(RunningStream stream) =>
        RemoteMethods.Write(stream.Serializer, stream.Items.Current, stream.Method.ResultType, stream.Deployment, stream.Method, RemoteMethods.StreamItem) ?? [];

    private async Task<RemoteStreamItems> EndedAsync(string streamId, RunningStream stream, byte[][] items)
    {
        _streams.TryRemove(streamId, out _);
        await stream.EndAsync(failed: false).ConfigureAwait(false);
        return new RemoteStreamItems(items, true);
    }

    public async Task StopStreamAsync(string streamId)
    {
        if (!_streams.TryRemove(streamId, out var stream))
            return;
        await stream.Stop.CancelAsync().ConfigureAwait(false);
        // Wait for a move in progress: an enumerator must not be disposed mid-move.
        await stream.Moving.WaitAsync().ConfigureAwait(false);
        if (stream.Pending is { } pending)
        {
            // A move started ahead of the consumer: the producer sees its cancelled token (or makes its next item), and
            // is disposed then. The caller (a consumer that left, or a dead consumer's cleanup) does not wait for that.
            _ = EndAfterAsync(stream, pending);
            return;
        }
        await stream.EndAsync(failed: false).ConfigureAwait(false);
    }

    private static async Task EndAfterAsync(RunningStream stream, Task<bool> pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The producer stopped on its cancelled token (or failed): either way it is done.
        }
        await stream.EndAsync(failed: false).ConfigureAwait(false);
    }

    /// <summary>The node <paramref name="nodeId"/> died: the streams it consumed are stopped, so their slots do not stay taken.</summary>
    public async Task StopStreamsOfAsync(string nodeId)
    {
        foreach (var (id, stream) in _streams)
        {
            if (stream.Consumer == nodeId)
                await StopStreamAsync(id).ConfigureAwait(false);
        }
    }

    /// <summary>How many streams other nodes consume from this node now.</summary>
    public int RunningStreams => _streams.Count;

    private static Replica? Find(Routing.DeploymentRouter router, string replicaId)
    {
        foreach (var r in router.Replicas)
        {
            if (r is Replica local && local.ReplicaId == replicaId)
                return local;
        }
        return null;
    }
}

/// <summary>Reaches the node agent of a given silo (Orleans routes a grain-service call to the silo named).</summary>
internal sealed class NodeAgentClient(IServiceProvider services) : GrainServiceClient<INodeAgent>(services), INodeAgentClient
{
    public INodeAgent On(SiloAddress silo) => GetGrainService(silo);
}

/// <summary>Arguments and results across nodes: each value serialized by its declared type in a wire format (<see cref="WireSerializers"/>).</summary>
internal static class RemoteMethods
{
    // One buffer per thread for writing a value before it is copied out (serializers write synchronously), so a call
    // does not grow a fresh buffer for every argument; one that grew past this is not kept.
    private const int KeptBufferBytes = 1 << 20;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    public static DeploymentMethod Find(DeploymentDefinition definition, int methodId)
    {
        foreach (var m in definition.Methods)
        {
            if (m.MethodId == methodId)
                return m;
        }
        throw new MissingMethodException(
            $"Deployment '{definition.Name}' has no method with id {methodId} on this node: every node must run the same build of the application.");
    }

    /// <summary>
    /// Serializes a call's boxed arguments by their parameter types. JSON arguments (from the HTTP ingress) are bound to
    /// their parameter types here, on the calling node, exactly as the generated invoker would bind them (strict JSON,
    /// the request's leniency), so a request that does not fit fails with its 400 before it leaves the node.
    /// </summary>
    public static byte[][] WriteArguments(IBoundarySerializer serializer, string deployment, DeploymentMethod method, object?[] arguments)
    {
        var types = method.ParameterTypes;
        InvokerHelpers.ExpectArguments(arguments, types.Length, method.Name);
        var result = new byte[arguments.Length][];
        for (var i = 0; i < arguments.Length; i++)
            result[i] = Write(serializer, Bind(method, i, arguments[i]), types[i], deployment, method, i) ?? [];
        return result;
    }

    private static object? Bind(DeploymentMethod method, int index, object? value) =>
        InvokerHelpers.Argument(value, method.ParameterTypes[index], method.Name, method.ParameterNames[index]);

    /// <summary>What <see cref="Write"/> and <see cref="Read"/> carry (for errors): an argument's index, or one of these.</summary>
    public const int Result = -1;
    public const int StreamItem = -2;

    private static string Describe(DeploymentMethod method, int what) => what switch
    {
        Result => "result",
        StreamItem => "stream item",
        _ => $"argument '{method.ParameterNames[what]}'",
    };

    public static object?[] ReadArguments(IBoundarySerializer serializer, string deployment, DeploymentMethod method, byte[][] arguments)
    {
        var types = method.ParameterTypes;
        if (arguments.Length != types.Length)
            throw new ArgumentException($"Method '{method.Name}' takes {types.Length} argument(s), but the calling node sent {arguments.Length}: every node must run the same build of the application.");
        var result = new object?[arguments.Length];
        for (var i = 0; i < arguments.Length; i++)
        {
            try
            {
                result[i] = serializer.Deserialize(arguments[i], types[i]);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw WireError(serializer, deployment, method, i, types[i], writing: false, e);
            }
        }
        return result;
    }

    /// <summary>Writes one value (<paramref name="what"/>: an argument's index, <see cref="Result"/> or <see cref="StreamItem"/>, for errors).</summary>
    public static byte[]? Write(IBoundarySerializer serializer, object? value, Type? type, string deployment, DeploymentMethod method, int what)
    {
        if (type is null)
            return null;
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        try
        {
            serializer.Serialize(buffer, value, type);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw WireError(serializer, deployment, method, what, type, writing: true, e);
        }
        var bytes = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity > KeptBufferBytes)
            t_buffer = null;
        return bytes;
    }

    public static object? Read(IBoundarySerializer serializer, byte[]? value, Type? type, string deployment, DeploymentMethod method, int what)
    {
        if (type is null || value is null)
            return null;
        try
        {
            return serializer.Deserialize(value, type);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw WireError(serializer, deployment, method, what, type, writing: false, e);
        }
    }

    /// <summary>A value the wire format cannot write or read: names the deployment, method, value, type, format and the option to change.</summary>
    public static NotSupportedException WireError(IBoundarySerializer serializer, string deployment, DeploymentMethod method, int what, Type type, bool writing, Exception cause)
    {
        string? reason;
        try
        {
            reason = serializer.CanSerialize(type, out var why) ? cause.Message : why;
        }
        catch (Exception)
        {
            reason = cause.Message;
        }
        return new NotSupportedException(
            $"Deployment '{deployment}', method '{method.Name}': the {Describe(method, what)} of type '{type}' cannot be {(writing ? "written" : "read")} " +
            $"in the {serializer.Format} wire format between nodes ({reason}). Make the type serializable in that format, or choose " +
            $"another format with ServeClusterOptions.WireFormat (MessagePack, Json or HostDefault) on the calling node.", cause);
    }
}
