namespace Serve;

/// <summary>Call options for handles that keep the handle's generated type.</summary>
public static class DeploymentHandleExtensions
{
    /// <summary>
    /// Returns a handle of the same type to the same deployment whose calls time out after <paramref name="timeout"/>:
    /// the call's cancellation token (the one the replica method sees, and the one it waits on in the queue) is
    /// cancelled, and the call fails with <see cref="TimeoutException"/> naming the deployment, method and timeout. The
    /// timeout covers the whole call: waiting for a slot, running, and for a stream every item until it ends.
    /// </summary>
    /// <remarks>
    /// The original handle is not changed. The caller gets the <see cref="TimeoutException"/> when the time is up even
    /// if the method ignores its token or blocks its thread: calls through this handle never run the method on the
    /// caller's thread (one hop to the thread pool, or the replica's CPU queue when its slots are taken). The replica's
    /// slot stays taken until the method returns, since the replica really is busy until then.
    /// <c>Timeout.InfiniteTimeSpan</c> removes the timeout.
    /// </remarks>
    /// <typeparam name="THandle">The handle's type, e.g. a generated <c>XHandle</c>.</typeparam>
    /// <param name="handle">The handle to copy.</param>
    /// <param name="timeout">Positive, or <see cref="Timeout.InfiniteTimeSpan"/> for no timeout.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or too large.</exception>
    public static THandle WithTimeout<THandle>(this THandle handle, TimeSpan timeout) where THandle : DeploymentHandle
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (timeout == Timeout.InfiniteTimeSpan)
            return (THandle)handle.WithTimeoutCore(null);
        if (timeout <= TimeSpan.Zero || timeout > DeploymentOptions.MaxTimerDuration)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout,
                $"WithTimeout on the handle of deployment '{handle.DeploymentName}': {timeout} is not a valid timeout; " +
                "use a positive TimeSpan (up to about 49 days), or Timeout.InfiniteTimeSpan for none.");
        }
        return (THandle)handle.WithTimeoutCore(timeout);
    }

    /// <summary>
    /// Returns a handle of the same type to the same deployment whose calls name <paramref name="modelId"/> (model
    /// multiplexing, Ray Serve's <c>multiplexed_model_id</c>): the router prefers a replica that already holds the model,
    /// and inside the call <see cref="ReplicaContext.ModelId"/> is <paramref name="modelId"/>, so the deployment's
    /// generated <c>GetModelAsync()</c> returns that model. The HTTP equivalent is the header
    /// <c>serve_multiplexed_model_id</c>.
    /// </summary>
    /// <typeparam name="THandle">The handle's type, e.g. a generated <c>XHandle</c>.</typeparam>
    /// <param name="handle">The handle to copy (not changed).</param>
    /// <param name="modelId">A non-empty model id; <c>null</c> removes it.</param>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is empty or white space.</exception>
    public static THandle WithModelId<THandle>(this THandle handle, string? modelId) where THandle : DeploymentHandle
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (modelId is not null && string.IsNullOrWhiteSpace(modelId))
            throw new ArgumentException($"WithModelId on the handle of deployment '{handle.DeploymentName}': the model id is empty; pass the id of the model to use, or null for none.", nameof(modelId));
        return (THandle)handle.WithModelIdCore(modelId);
    }
}
