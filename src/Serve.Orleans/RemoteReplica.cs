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
    private readonly IBoundarySerializer _serializer;
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

    public RemoteReplica(INodeAgentClient agents, IBoundarySerializer serializer, SiloAddress silo, DeploymentDefinition definition, string application, string deployment, string replicaId, string localNode)
    {
        _localNode = localNode;
        _agents = agents;
        _serializer = serializer;
        _definition = definition;
        _application = application;
        _deployment = deployment;
        Silo = silo;
        NodeId = NodeIds.Of(silo);
        ReplicaId = replicaId;
        _metricTags = ServeMetrics.ReplicaTags(application, deployment, replicaId);
    }

    public SiloAddress Silo { get; }
    public string Application => _application;
    public string Deployment => _deployment;
    public string ReplicaId { get; }
    public string? NodeId { get; }
    public bool IsLocal => false;
    public int Ongoing => Volatile.Read(ref _ongoing);
    public Multiplexing.IMultiplexedModels? Models => null;
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
        return ReadStreamAsync<TItem>(streamId, method.ResultType, CancellationToken.None);
    }

    public async ValueTask<IAsyncEnumerable<object?>> InvokeBoxedStreamAsync(DeploymentDefinition caller, int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var (streamId, method) = await StartStreamAsync(methodId, arguments, cancellationToken).ConfigureAwait(false);
        return ReadStreamAsync<object?>(streamId, method.ResultType, CancellationToken.None);
    }

    private async ValueTask<(string StreamId, DeploymentMethod Method)> StartStreamAsync(int methodId, object?[] arguments, CancellationToken cancellationToken)
    {
        var method = RemoteMethods.Find(_definition, methodId);
        var call = new RemoteCall(_application, _deployment, ReplicaId, methodId, RemoteMethods.WriteArguments(_serializer, method, arguments), _localNode);
        var start = await SendOrLoseAsync(_agents.On(Silo).StartStreamAsync(call).WaitAsync(cancellationToken)).ConfigureAwait(false);
        return start.Status == RemoteStatus.Completed ? (start.StreamId!, method) : throw new ReplicaRefusedException(ReplicaId);
    }

    // One item per round trip (batching items per round trip is a later optimisation). The consumer's token (the
    // handle's producer token) reaches the enumerator through GetAsyncEnumerator; leaving early stops the stream there.
    private async IAsyncEnumerable<TItem> ReadStreamAsync<TItem>(string streamId, Type? itemType, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var agent = _agents.On(Silo);
        var ended = false;
        try
        {
            while (true)
            {
                var next = await SendOrLoseAsync(agent.NextItemAsync(streamId).WaitAsync(cancellationToken)).ConfigureAwait(false);
                if (!next.HasItem)
                {
                    ended = true;
                    yield break;
                }
                yield return (TItem)RemoteMethods.Read(_serializer, next.Item, itemType)!;
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
        var call = new RemoteCall(_application, _deployment, ReplicaId, methodId, RemoteMethods.WriteArguments(_serializer, method, arguments));
        var answer = await SendOrLoseAsync(_agents.On(Silo).InvokeAsync(call, cancellationToken)).ConfigureAwait(false);
        return answer.Status switch
        {
            RemoteStatus.Completed => RemoteMethods.Read(_serializer, answer.Value, method.ResultType),
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

/// <summary>How a node is named in Serve (routers, errors): its silo address.</summary>
internal static class NodeIds
{
    public static string Of(SiloAddress silo) => silo.ToParsableString();
}
