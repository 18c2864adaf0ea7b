namespace Serve;

/// <summary>One application as <see cref="IServeClient.GetStatus"/> reports it.</summary>
/// <param name="Name">The application name.</param>
/// <param name="RoutePrefix">Its HTTP route prefix.</param>
/// <param name="IngressDeployment">The deployment that receives its requests.</param>
/// <param name="Status">Its health: the worst of its deployments'.</param>
/// <param name="Message">Why it is not healthy, or empty.</param>
/// <param name="Deployments">Its deployments.</param>
public sealed record ApplicationInfo(
    string Name,
    string RoutePrefix,
    string IngressDeployment,
    ServeHealth Status,
    string Message,
    IReadOnlyList<DeploymentInfo> Deployments);
