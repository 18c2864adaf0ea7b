namespace Serve;

/// <summary>The life of one replica, as the controller sees it.</summary>
public enum ReplicaState
{
    /// <summary>Its constructor (and first reconfigure) is running.</summary>
    Starting,
    /// <summary>It serves calls.</summary>
    Running,
    /// <summary>It takes no new calls and drains the in-flight ones before it is disposed.</summary>
    Stopping,
    /// <summary>It is gone.</summary>
    Stopped,
}
