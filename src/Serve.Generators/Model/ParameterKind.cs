namespace Serve.Generators.Model
{
    /// <summary>How a parameter is passed.</summary>
    /// <remarks>A plain enum, so models holding it stay cacheable.</remarks>
    internal enum ParameterKind
    {
        /// <summary>A value: a handle-method argument, or a constructor argument taken by <c>Bind</c>.</summary>
        Value,
        /// <summary>A <c>CancellationToken</c> of a handle method: dropped from the handle, receives the call's token.</summary>
        CancellationToken,
        /// <summary>A constructor parameter of a handle type: <c>Bind</c> takes <c>Application&lt;THandle&gt;</c>.</summary>
        Handle,
        /// <summary>A constructor parameter of type <c>DeploymentHandle</c>: <c>Bind</c> takes any <c>Application</c>.</summary>
        UntypedHandle,
        /// <summary>A constructor parameter whose type is an unresolved <c>YHandle</c>; resolved after all deployments are parsed.</summary>
        UnresolvedHandle,
        /// <summary>A <c>ReplicaContext</c> constructor parameter: injected, not in <c>Bind</c>.</summary>
        Context,
        /// <summary>A <c>[FromServices]</c> constructor parameter: resolved from the host's services, not in <c>Bind</c>.</summary>
        Service,
        /// <summary>A nullable <c>[FromServices]</c> constructor parameter: null when the service is not registered.</summary>
        OptionalService,
    }
}
