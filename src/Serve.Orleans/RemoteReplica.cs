using System.Diagnostics;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Serve.CodeGeneration;
using Serve.Isolation;
using Serve.Observability;
using Serve.Replicas;

namespace Serve.Orleans;

/// <summary>
/// A replica another node runs, as this node's routers see it: admission counts this node's calls in flight to it
/// (bounded by the same <see cref="DeploymentOptions.MaxOngoingRequests"/>), and every invoke sends the call to that
/// node's agent as a grain-service call, with the arguments serialized through the host's
/// <see cref="IBoundarySerializer"/> (typed calls take their boxed arguments, <c>GetArguments()</c>). The node answers
/// with the result, or refuses (full there: <see cref="ReplicaRefusedException"/>); a node that failed with the call in
/// flight makes it fail with <see cref="ReplicaLostException"/>. The handle turns both into a try elsewhere.
/// </summary>
internal sealed class RemoteReplica : IReplica
{
    private readonly INodeAgentClient _agents;
    // The node's agent, made once (a grain reference) rather than looked up for every call.
    private INodeAgent? _agent;
    private readonly IBoundarySerializer _serializer;
    private readonly byte _format;
    private readonly DeploymentDefinition _definition;
    private readonly string _application;
    private readonly string _deployment;
    private readonly TagList _metricTags;
    private int _ongoing;
    private volatile bool _lost;
    // Completed when membership declares the node dead: calls in flight there fail at once instead of waiting for
    // Orleans to give up on their responses (its ResponseTimeout).
    private readonly TaskCompletionSource _lostSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly string _localNode;

    public RemoteReplica(INodeAgentClient agents, WireSerializers wire, SiloAddress silo, DeploymentDefinition definition, string application, string deployment, string replicaId, string localNode)
    {
        _localNode = localNode;
        _agents = agents;
        _serializer = wire.Local;
        _format = (byte)wire.Format;
        _definition = definition;
        _application = application;
        _deployment = deployment;
        Silo = silo;
        NodeId = NodeIds.Of(silo);
        ReplicaId = replicaId;
        _metricTags = ServeMetrics.ReplicaTags(application, deployment, replicaId);
    }

    public SiloAddress Silo { get; }
    private INodeAgent Agent => _agent ??= _agents.On(Silo);
    public string Application => _application;
    public string Deployment => _deployment;
    public string ReplicaId { get; }
    public string? NodeId { get; }
    public bool IsLocal => false;
    public int Ongoing => Volatile.Read(ref _ongoing);
    /// <summary>
    /// The models the node last listed for this replica (multiplexed deployments), so model-aware routing prefers a
    /// remote replica that holds the call's model; null for a deployment that is not multiplexed. A snapshot, refreshed
    /// with the replica listing (<see cref="ServeClusterOptions.ReplicaRefreshInterval"/>).
    /// </summary>
    public Multiplexing.IMultiplexedModels? Models => _models;

    private volatile ListedModels? _models;

    /// <summary>Takes the model ids the node listed (null: not multiplexed).</summary>
    public void SetModels(string[]? modelIds) =>
        _models = modelIds is null ? null : _models is { } known && known.ModelIds.SequenceEqual(modelIds) ? known : new ListedModels(modelIds);
    public ref readonly TagList MetricTags => ref _metricTags;

    // A remote replica's calls are never cancelled by a local stop: its node stops them, and a lost node fails them.
    public CancellationToken AbortToken => CancellationToken.None;

    public ReplicaStoppedException StoppedError(Exception? cause) => new(_application, _deployment, ReplicaId, TimeSpan.Zero, cause);

    /// <summary>The node failed: no new call is admitted (the router drops it too), and calls in flight fail with <see cref="ReplicaLostException"/> now.</summary>
    public void MarkLost()
    {
        _lost = true;
        _lostSignal.TrySetResult();
    }

    public bool TryAcquire(int maxOngoing)
    {
        while (true)
        {
            var current = Volatile.Read(ref _ongoing);
            if (current >= maxOngoing || _lost)
                return false;
            if (Interlocked.CompareExchange(ref _ongoing, current + 1, current) == current)
                return true;
        }
    }

    public void Release() => Interlocked.Decrement(ref _ongoing);

    public async ValueTask<TResult> InvokeAsync<TArgs, TResult>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IInvocation<TResult> =>
        (TResult)(await SendAsync(arguments.MethodId, arguments.GetArguments(), cancellationToken).ConfigureAwait(false))!;

    public async ValueTask InvokeVoidAsync<TArgs>(DeploymentDefinition caller, TArgs arguments, bool offCaller, CancellationToken cancellationToken)
        where TArgs : struct, IVoidInvocation =>
        await SendAsync(arguments.MethodId, arguments.GetArguments(), cancellationToken).ConfigureAwait(false);

    public ValueTask<object?> InvokeBoxedAsync(DeploymentDefinition caller, int methodId, object?[] arguments, bool offCaller, CancellationToken cancellationToken) =>
        SendAsync(methodId, arguments, cancellationToken);

    public async ValueTask<IAsyncEnumerable<TItem>> InvokeStreamAsync<TArgs, TItem>(DeploymentDefinition caller, TArgs arguments, CancellationToken cancellationToken)
        where TArgs : struct, IStreamInvocation<TItem>
    {
        var (streamId, method) = await StartStreamAsync(arguments.MethodId, arguments.GetArguments(), cancellationToken).ConfigureAwait(false);
        return ReadStreamAsync<TItem>(streamId, method, CancellationToken.None);
    }

    public async ValueTask<IAsyncEnumerable<object?>> InvokeBoxedStreamAsync(DeploymentDefinition caller, int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var (streamId, method) = await StartStreamAsync(methodId, arguments, cancellationToken).ConfigureAwait(false);
        return ReadStreamAsync<object?>(streamId, method, CancellationToken.None);
    }

    private async ValueTask<(string StreamId, DeploymentMethod Method)> StartStreamAsync(int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var method = RemoteMethods.Find(_definition, methodId);
        var call = new RemoteCall(_application, _deployment, ReplicaId, methodId, RemoteMethods.WriteArguments(_serializer, _deployment, method, arguments), _localNode, _format,
            ReplicaContext.CurrentModelId);
        var start = await SendOrLoseAsync(Agent.StartStreamAsync(call).WaitAsync(cancellationToken)).ConfigureAwait(false);
        return start.Status == RemoteStatus.Completed ? (start.StreamId!, method) : throw new ReplicaRefusedException(ReplicaId);
    }

    // Each round trip brings the items the producer had ready (at least one, bounded: NodeCalls.MaxItemsPerFetch and
    // MaxBytesPerFetch). The consumer's token (the handle's producer token) reaches the enumerator through
    // GetAsyncEnumerator; leaving early stops the stream there.
    private async IAsyncEnumerable<TItem> ReadStreamAsync<TItem>(string streamId, DeploymentMethod method, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var agent = Agent;
        var ended = false;
        try
        {
            while (!ended)
            {
                var next = await SendOrLoseAsync(agent.NextItemsAsync(streamId).WaitAsync(cancellationToken)).ConfigureAwait(false);
                // Ended there: the node already freed the slot, so leaving during the last items sends no stop.
                ended = next.Ended;
                foreach (var item in next.Items)
                    yield return (TItem)RemoteMethods.Read(_serializer, item, method.ResultType, _deployment, method, RemoteMethods.StreamItem)!;
            }
        }
        finally
        {
            if (!ended && !_lost)
                _ = StopQuietlyAsync(agent, streamId);
        }
    }

    private static async Task StopQuietlyAsync(INodeAgent agent, string streamId)
    {
        try
        {
            await agent.StopStreamAsync(streamId).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The node is gone or the stream already ended there; nothing holds its slot any more either way.
        }
    }

    private async ValueTask<object?> SendAsync(int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var method = RemoteMethods.Find(_definition, methodId);
        var call = new RemoteCall(_application, _deployment, ReplicaId, methodId, RemoteMethods.WriteArguments(_serializer, _deployment, method, arguments), Format: _format,
            ModelId: ReplicaContext.CurrentModelId);
        var answer = await SendOrLoseAsync(Agent.InvokeAsync(call, cancellationToken)).ConfigureAwait(false);
        return answer.Status switch
        {
            RemoteStatus.Completed => RemoteMethods.Read(_serializer, answer.Value, method.ResultType, _deployment, method, RemoteMethods.Result),
            // A replica the node no longer runs is as good as full: the call did not run, so it may go elsewhere.
            _ => throw new ReplicaRefusedException(ReplicaId),
        };
    }

    /// <summary>
    /// Awaits one request to the node, turning its loss into <see cref="ReplicaLostException"/>: the transport's own
    /// signal (the silo is unavailable, the connection failed), or membership declaring the node dead first.
    /// </summary>
    private async Task<T> SendOrLoseAsync<T>(Task<T> pending)
    {
        try
        {
            if (await Task.WhenAny(pending, _lostSignal.Task).ConfigureAwait(false) != pending)
            {
                // Nobody waits for the abandoned response any more; observe its failure.
                _ = pending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                throw new ReplicaLostException(_application, _deployment, ReplicaId, NodeId!);
            }
            return await pending.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SiloUnavailableException or ConnectionFailedException || CouldNotConnect(e) || _lost && e is not OperationCanceledException and not ReplicaLostException)
        {
            MarkLost();
            throw new ReplicaLostException(_application, _deployment, ReplicaId, NodeId!, e);
        }
    }

    // Orleans reports a connection it could not open (the node's process is gone: connection refused) as a rejection
    // carrying ConnectionFailedException's text, not as ConnectionFailedException itself.
    private static bool CouldNotConnect(Exception e) =>
        e is OrleansMessageRejectionException && (e.InnerException is ConnectionFailedException || e.Message.Contains(nameof(ConnectionFailedException), StringComparison.Ordinal));
}

/// <summary>A remote replica's loaded models as its node last listed them: read by model-aware routing only.</summary>
internal sealed class ListedModels(string[] modelIds) : Multiplexing.IMultiplexedModels
{
    private readonly HashSet<string> _set = new(modelIds, StringComparer.Ordinal);

    public IReadOnlyList<string> ModelIds { get; } = modelIds;

    public bool Contains(string modelId) => _set.Contains(modelId);

    // The node that runs the replica owns its models; this is only what it said it holds.
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public Action? ModelLoading { get; set; }
}

/// <summary>How a node is named in Serve (routers, errors): its silo address.</summary>
internal static class NodeIds
{
    public static string Of(SiloAddress silo) => silo.ToParsableString();
}
