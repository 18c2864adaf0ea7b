using System.Net;
using System.Reflection;
using Orleans.Runtime;
using Serve.Isolation;

namespace Serve.Orleans.Tests;

/// <summary>
/// How <see cref="RemoteReplica"/> reads Orleans' failures when the other node's process is gone (found by
/// tests/Serve.Cli.Tests/ClusterProcessTests: a <c>kill -9</c>ed node's calls failed with 500 on the survivors).
/// </summary>
public sealed class RemoteReplicaFailureTests
{
    private static readonly SiloAddress Silo = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 39787), 155108267);

    private sealed class Agents(INodeAgent agent) : INodeAgentClient
    {
        public INodeAgent On(SiloAddress silo) => agent;
    }

    /// <summary>An agent every request to which fails as Orleans fails it.</summary>
    private sealed class FailingAgent(Exception failure) : INodeAgent
    {
        public Task<ReplicaListing[]> ListReplicasAsync() => Task.FromException<ReplicaListing[]>(failure);

        public Task<RemoteResult> InvokeAsync(RemoteCall call, CancellationToken cancellationToken) => Task.FromException<RemoteResult>(failure);

        public Task<RemoteStreamStart> StartStreamAsync(RemoteCall call) => Task.FromException<RemoteStreamStart>(failure);

        public Task<RemoteStreamItems> NextItemsAsync(string streamId) => Task.FromException<RemoteStreamItems>(failure);

        public Task StopStreamAsync(string streamId) => Task.FromException(failure);
    }

    /// <summary>What Orleans 10 throws when it cannot open a connection to a silo whose process was killed (its constructors are internal).</summary>
    private static OrleansMessageRejectionException ConnectionRefused() =>
        (OrleansMessageRejectionException)Activator.CreateInstance(typeof(OrleansMessageRejectionException), BindingFlags.Instance | BindingFlags.NonPublic, null,
            [$"Exception while sending message: Orleans.Runtime.Messaging.ConnectionFailedException: Unable to connect to {Silo}, will retry after 972.4673ms"], null)!;

    [Fact]
    public async Task A_call_to_a_node_Orleans_cannot_connect_to_fails_as_lost_naming_the_node_and_the_replica_takes_no_more_calls()
    {
        var rejection = ConnectionRefused();
        var definition = WhereAmI.Bind().Definition;
        var method = definition.Methods.First(m => m.Name == "Where");
        var replica = new RemoteReplica(new Agents(new FailingAgent(rejection)),
            // The JSON wire never touches the host (only HostDefault reads the host's serializer).
            new WireSerializers(null!, Microsoft.Extensions.Options.Options.Create(new ServeClusterOptions { WireFormat = BoundaryFormat.Json })), Silo, definition, "app", "WhereAmI", "r1", "local");

        var e = await Assert.ThrowsAsync<ReplicaLostException>(() => replica.InvokeBoxedAsync(definition, method.MethodId, ["caller"], offCaller: false, CancellationToken.None).AsTask());

        Assert.Equal(Silo.ToParsableString(), e.NodeId);
        Assert.Equal("r1", e.ReplicaId);
        Assert.Same(rejection, e.InnerException);
        Assert.False(replica.TryAcquire(100));
    }
}
