using System.ComponentModel;
using Serve.Routing;

namespace Serve.CodeGeneration;

/// <summary>The running deployment a generated handle is bound to; created by the host, opaque to user code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class HandleTarget
{
    internal HandleTarget(DeploymentEndpoint endpoint) => Endpoint = endpoint;

    internal DeploymentEndpoint Endpoint { get; }
}
