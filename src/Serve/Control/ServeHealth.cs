namespace Serve;

/// <summary>The health of an application or deployment (Ray Serve's status values).</summary>
public enum ServeHealth
{
    /// <summary>Moving towards its target: replicas are starting, stopping or being reconfigured.</summary>
    Updating,
    /// <summary>At its target: every replica runs the target version and config.</summary>
    Healthy,
    /// <summary>Could not reach its target; the message says why.</summary>
    Unhealthy,
    /// <summary>Being deleted: it takes no new calls and drains.</summary>
    Deleting,
}
