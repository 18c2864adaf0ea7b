namespace Serve;

/// <summary>How <see cref="IServeClient.RunAsync{THandle}"/> deploys an application.</summary>
public sealed class RunOptions
{
    /// <summary>The default application name.</summary>
    public const string DefaultName = "default";

    /// <summary>The application name; deploying again under the same name updates it in place. Default <c>"default"</c>.</summary>
    public string Name { get; set; } = DefaultName;

    /// <summary>The HTTP route prefix of the ingress deployment; default its <see cref="DeploymentOptions.RoutePrefix"/>, else <c>"/"</c>.</summary>
    public string? RoutePrefix { get; set; }
}
