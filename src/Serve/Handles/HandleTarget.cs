using System.ComponentModel;
using Serve.Routing;

namespace Serve.CodeGeneration;

/// <summary>The running deployment a generated handle is bound to; created by the host, opaque to user code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class HandleTarget
{
    internal HandleTarget(DeploymentEndpoint endpoint, DeploymentDefinition? definition = null)
    {
        Endpoint = endpoint;
        Definition = definition ?? endpoint.Definition;
    }

    internal DeploymentEndpoint Endpoint { get; }

    /// <summary>The definition whose generated code the handle was made from (an isolated context's copy for handles held by isolated replicas).</summary>
    internal DeploymentDefinition Definition { get; }

    /// <summary>The per-call timeout of handles made from this target (<c>WithTimeout</c>), or null.</summary>
    internal TimeSpan? Timeout { get; init; }

    /// <summary>The model id of handles made from this target (<c>WithModelId</c>), or null.</summary>
    internal string? ModelId { get; init; }
}
