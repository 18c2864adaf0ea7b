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

    public Task<RemoteStreamItem> NextItemAsync(string streamId) =>
        Task.Run(() => _calls.NextItemAsync(streamId), CancellationToken.None);

    public Task StopStreamAsync(string streamId) =>
        Task.Run(() => _calls.StopStreamAsync(streamId), CancellationToken.None);
}

/// <summary>Runs the calls other nodes send to this node's replicas (outside grain code, so on the thread pool's terms).</summary>
internal sealed class NodeCalls(ServeHost host)
{
    private readonly IBoundarySerializer _serializer = host.Options.BoundarySerializer();

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
            var arguments = RemoteMethods.ReadArguments(_serializer, method, call.Arguments);
            // The caller's model id (WithModelId / the multiplexing header) is the call's here too.
            ReplicaContext.EnterModel(call.ModelId);
            var result = await replica.InvokeBoxedAsync(endpoint.Definition, call.MethodId, arguments, offCaller: false, cancellationToken).ConfigureAwait(false);
            failed = false;
            return new RemoteResult(RemoteStatus.Completed, RemoteMethods.Write(_serializer, result, method.ResultType));
        }
        finally
        {
            router.Release(replica, started, failed);
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RunningStream> _streams = new(StringComparer.Ordinal);

    /// <summary>A stream another node consumes: its enumerator, the slot it holds, and the token its consumer can cancel.</summary>
    private sealed class RunningStream(IAsyncEnumerator<object?> items, Replica replica, Routing.DeploymentRouter router, long started, CancellationTokenSource stop, Type? itemType, string? consumer)
    {
        public string? Consumer { get; } = consumer;
        public IAsyncEnumerator<object?> Items { get; } = items;
        public Type? ItemType { get; } = itemType;
        public CancellationTokenSource Stop { get; } = stop;
        // One move at a time: a consumer asks for the next item only after it got the last one.
        public SemaphoreSlim Moving { get; } = new(1, 1);
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
            var arguments = RemoteMethods.ReadArguments(_serializer, method, call.Arguments);
            ReplicaContext.EnterModel(call.ModelId);
            var items = await replica.InvokeBoxedStreamAsync(endpoint.Definition, call.MethodId, arguments, stop.Token).ConfigureAwait(false);
            var id = Guid.NewGuid().ToString("N");
            _streams[id] = new RunningStream(items.GetAsyncEnumerator(stop.Token), replica, router, started, stop, method.ResultType, call.CallerNode);
            return new RemoteStreamStart(RemoteStatus.Completed, id);
        }
        catch
        {
            stop.Dispose();
            router.Release(replica, started, failed: true);
            throw;
        }
    }

    public async Task<RemoteStreamItem> NextItemAsync(string streamId)
    {
        if (!_streams.TryGetValue(streamId, out var stream))
            throw new InvalidOperationException($"Stream '{streamId}' is not running on this node (it ended or was stopped).");
        await stream.Moving.WaitAsync().ConfigureAwait(false);
        try
        {
            bool more;
            try
            {
                more = await stream.Items.MoveNextAsync().ConfigureAwait(false);
            }
            catch
            {
                _streams.TryRemove(streamId, out _);
                await stream.EndAsync(failed: true).ConfigureAwait(false);
                throw;
            }
            if (!more)
            {
                _streams.TryRemove(streamId, out _);
                await stream.EndAsync(failed: false).ConfigureAwait(false);
                return new RemoteStreamItem(false, null);
            }
            return new RemoteStreamItem(true, RemoteMethods.Write(_serializer, stream.Items.Current, stream.ItemType));
        }
        finally
        {
            stream.Moving.Release();
        }
    }

    public async Task StopStreamAsync(string streamId)
    {
        if (!_streams.TryRemove(streamId, out var stream))
            return;
        await stream.Stop.CancelAsync().ConfigureAwait(false);
        // Wait for a move in progress: an enumerator must not be disposed mid-move.
        await stream.Moving.WaitAsync().ConfigureAwait(false);
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

/// <summary>Arguments and results across nodes: each value serialized by its declared type with the host's boundary serializer.</summary>
internal static class RemoteMethods
{
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
    public static byte[][] WriteArguments(IBoundarySerializer serializer, DeploymentMethod method, object?[] arguments)
    {
        var types = method.ParameterTypes;
        InvokerHelpers.ExpectArguments(arguments, types.Length, method.Name);
        var result = new byte[arguments.Length][];
        for (var i = 0; i < arguments.Length; i++)
            result[i] = Write(serializer, Bind(method, i, arguments[i]), types[i]) ?? [];
        return result;
    }

    private static object? Bind(DeploymentMethod method, int index, object? value) =>
        InvokerHelpers.Argument(value, method.ParameterTypes[index], method.Name, method.ParameterNames[index]);

    public static object?[] ReadArguments(IBoundarySerializer serializer, DeploymentMethod method, byte[][] arguments)
    {
        var types = method.ParameterTypes;
        if (arguments.Length != types.Length)
            throw new ArgumentException($"Method '{method.Name}' takes {types.Length} argument(s), but the calling node sent {arguments.Length}: every node must run the same build of the application.");
        var result = new object?[arguments.Length];
        for (var i = 0; i < arguments.Length; i++)
            result[i] = serializer.Deserialize(arguments[i], types[i]);
        return result;
    }

    public static byte[]? Write(IBoundarySerializer serializer, object? value, Type? type)
    {
        if (type is null)
            return null;
        var buffer = new ArrayBufferWriter<byte>();
        serializer.Serialize(buffer, value, type);
        return buffer.WrittenSpan.ToArray();
    }

    public static object? Read(IBoundarySerializer serializer, byte[]? value, Type? type) =>
        type is null || value is null ? null : serializer.Deserialize(value, type);
}
