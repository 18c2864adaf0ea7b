namespace Serve;

/// <summary>
/// What an untyped call tells its caller beyond its result: the replica that took it. The HTTP ingress passes one with
/// the request's call so its access log can name the replica, without the core call path knowing about HTTP; calls
/// the replica makes to other deployments have receipts of their own (or none).
/// </summary>
internal sealed class CallReceipt
{
    /// <summary>The replica that took the call; <c>null</c> until one did.</summary>
    public string? ReplicaId { get; set; }
}
