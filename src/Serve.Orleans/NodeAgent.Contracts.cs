using Orleans;
using Orleans.Services;

namespace Serve.Orleans;

/// <summary>One replica a node runs, as it lists it to the others.</summary>
[GenerateSerializer, Immutable, Alias("Serve.ReplicaListing")]
internal sealed record ReplicaListing(
    [property: Id(0)] string Application,
    [property: Id(1)] string Deployment,
    [property: Id(2)] string ReplicaId,
    [property: Id(3)] string Version,
    [property: Id(4)] string[]? Models = null);

/// <summary>A call for a replica on another node: the method id and each argument serialized by its parameter type.</summary>
[GenerateSerializer, Immutable, Alias("Serve.RemoteCall")]
internal sealed record RemoteCall(
    [property: Id(0)] string Application,
    [property: Id(1)] string Deployment,
    [property: Id(2)] string ReplicaId,
    [property: Id(3)] int MethodId,
    [property: Id(4)] byte[][] Arguments,
    [property: Id(5)] string? CallerNode = null,
    [property: Id(6)] string? ModelId = null);

/// <summary>How a node answered a call.</summary>
internal enum RemoteStatus
{
    /// <summary>The method ran; <see cref="RemoteResult.Value"/> holds its serialized result (empty for void).</summary>
    Completed,
    /// <summary>The replica was full (calls from its own and other nodes) and did not run the call.</summary>
    Refused,
    /// <summary>The node no longer runs that replica (it stopped or was replaced); the call did not run.</summary>
    Gone,
}

[GenerateSerializer, Immutable, Alias("Serve.RemoteResult")]
internal sealed record RemoteResult(
    [property: Id(0)] RemoteStatus Status,
    [property: Id(1)] byte[]? Value);

/// <summary>How a node answered the start of a stream: its id there when it started.</summary>
[GenerateSerializer, Immutable, Alias("Serve.RemoteStreamStart")]
internal sealed record RemoteStreamStart(
    [property: Id(0)] RemoteStatus Status,
    [property: Id(1)] string? StreamId);

/// <summary>The next item of a stream (serialized by the method's item type), or the end.</summary>
[GenerateSerializer, Immutable, Alias("Serve.RemoteStreamItem")]
internal sealed record RemoteStreamItem(
    [property: Id(0)] bool HasItem,
    [property: Id(1)] byte[]? Item);

/// <summary>
/// The Serve agent of one node (an Orleans grain service: one per silo, for the silo's lifetime). It lists the replicas
/// its host runs and runs calls other nodes send to them, admitted against the same limit as local calls.
/// </summary>
[Alias("Serve.INodeAgent")]
internal interface INodeAgent : IGrainService
{
    [Alias("ListReplicas")]
    Task<ReplicaListing[]> ListReplicasAsync();

    [Alias("Invoke")]
    Task<RemoteResult> InvokeAsync(RemoteCall call, CancellationToken cancellationToken);

    /// <summary>Starts a stream method; the stream holds its replica slot until it ends or is disposed.</summary>
    [Alias("StartStream")]
    Task<RemoteStreamStart> StartStreamAsync(RemoteCall call);

    /// <summary>The next item of a started stream; at the end (or on its error) the stream is gone and its slot free.</summary>
    [Alias("NextItem")]
    Task<RemoteStreamItem> NextItemAsync(string streamId);

    /// <summary>Stops a stream its consumer left early: cancels its token, disposes it, frees its slot.</summary>
    [Alias("StopStream")]
    Task StopStreamAsync(string streamId);
}

/// <summary>Reaches the node agent of a given silo.</summary>
internal interface INodeAgentClient : IGrainServiceClient<INodeAgent>
{
    INodeAgent On(global::Orleans.Runtime.SiloAddress silo);
}
