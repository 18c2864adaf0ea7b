namespace Serve;

/// <summary>Everything the host runs (Ray's <c>serve status</c>).</summary>
/// <param name="Applications">The applications, ordered by name.</param>
public sealed record ServeStatus(IReadOnlyList<ApplicationInfo> Applications);
