namespace Serve;

/// <summary>Options of a Serve host (<see cref="ServeHost.StartAsync(Action{ServeOptions}?, CancellationToken)"/> or <c>AddServe</c>).</summary>
public sealed class ServeOptions
{
    /// <summary>
    /// How many times in a row a replica may fail to start (its constructor or first reconfigure throws) before the
    /// deployment is marked unhealthy and <c>RunAsync</c> fails with <see cref="DeploymentFailedException"/>. Default 3.
    /// </summary>
    public int MaxReplicaStartAttempts { get; set; } = 3;

    /// <summary>The wait before retrying a failed replica start; it doubles after each failure. Default 100 ms.</summary>
    public TimeSpan ReplicaStartBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Services for <see cref="FromServicesAttribute"/> constructor parameters of an embedded host. A host made by
    /// <c>AddServe</c> uses the application's service provider instead.
    /// </summary>
    public IServiceProvider? Services { get; set; }

    internal void Validate()
    {
        if (MaxReplicaStartAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxReplicaStartAttempts), MaxReplicaStartAttempts,
                $"ServeOptions.MaxReplicaStartAttempts = {MaxReplicaStartAttempts} is out of range; use 1 or more.");
        if (ReplicaStartBackoff < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ReplicaStartBackoff), ReplicaStartBackoff,
                $"ServeOptions.ReplicaStartBackoff = {ReplicaStartBackoff} must not be negative.");
    }
}
