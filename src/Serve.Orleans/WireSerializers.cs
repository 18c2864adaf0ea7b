using Microsoft.Extensions.Options;
using Serve.Isolation;

namespace Serve.Orleans;

/// <summary>
/// The serializers of the node-to-node wire (<see cref="ServeClusterOptions.WireFormat"/>): this node's own for the calls
/// it sends, and one per format for the calls other nodes send it (each call says which format it is written in).
/// Made on first use, one instance each per node, shared by every call (the serializers are thread-safe).
/// </summary>
internal sealed class WireSerializers
{
    private readonly ServeHost _host;
    private IBoundarySerializer? _hostDefault;
    private IBoundarySerializer? _json;
    private IBoundarySerializer? _messagePack;

    public WireSerializers(ServeHost host, IOptions<ServeClusterOptions> options)
    {
        _host = host;
        Format = options.Value.WireFormat;
        Local = For((byte)Format);
    }

    /// <summary>The format this node writes its calls in.</summary>
    public BoundaryFormat Format { get; }

    /// <summary>The serializer of <see cref="Format"/>.</summary>
    public IBoundarySerializer Local { get; }

    /// <summary>The serializer of a format a call names.</summary>
    public IBoundarySerializer For(byte format) => (BoundaryFormat)format switch
    {
        BoundaryFormat.HostDefault => _hostDefault ?? Interlocked.CompareExchange(ref _hostDefault, _host.Options.BoundarySerializer(), null) ?? _hostDefault,
        BoundaryFormat.Json => _json ?? Interlocked.CompareExchange(ref _json, new JsonBoundarySerializer(), null) ?? _json,
        BoundaryFormat.MessagePack => _messagePack ?? Interlocked.CompareExchange(ref _messagePack, new MessagePackBoundarySerializer(), null) ?? _messagePack,
        _ => throw new NotSupportedException($"The calling node wrote this call in wire format {format}, which this node does not know: every node must run the same build of Serve."),
    };
}
