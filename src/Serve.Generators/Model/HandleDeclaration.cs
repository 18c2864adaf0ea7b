namespace Serve.Generators.Model
{
    /// <summary>The handle type one deployment generates, with where it is declared, to report two deployments generating the same handle.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="HandleFullName">The handle's fully qualified name, <c>global::Demo.GreeterHandle</c>.</param>
    /// <param name="Key">A key unique per deployment (see <see cref="DeploymentModel.Key"/>); the ordinally first wins.</param>
    /// <param name="DisplayName">The deployment as a user names it, <c>Demo.Greeter</c>.</param>
    /// <param name="Location">The class or method identifier.</param>
    internal sealed record HandleDeclaration(string HandleFullName, string Key, string DisplayName, LocationInfo? Location);
}
