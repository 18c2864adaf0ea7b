using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Serve.Isolation;

/// <summary>Derives a deployment's code version from the assembly that will actually run.</summary>
internal static class CodeIdentity
{
    /// <summary>
    /// The first 12 hex digits of the MVID of the deployment's assembly: the loaded one, or for a directory environment
    /// the file in that folder (read without loading it). A folder or file that is missing gives a clear error now, at
    /// <c>RunAsync</c>, before anything changes.
    /// </summary>
    public static string Of(string deployment, DeploymentDefinition definition, RuntimeEnv env)
    {
        if (env.Kind != RuntimeEnvKind.Directory)
            return definition.ImplementationType.Assembly.ManifestModule.ModuleVersionId.ToString("N")[..12];
        var path = DirectoryAssembly(deployment, definition, env);
        try
        {
            using var stream = File.OpenRead(path);
            using var pe = new PEReader(stream);
            var reader = pe.GetMetadataReader();
            return reader.GetGuid(reader.GetModuleDefinition().Mvid).ToString("N")[..12];
        }
        catch (Exception e) when (e is BadImageFormatException or InvalidOperationException)
        {
            throw new IsolationException(deployment, $"Deployment '{deployment}': {path} is not a .NET assembly: {e.Message}", e);
        }
    }

    /// <summary>
    /// The file a directory environment loads the deployment from: the folder's assembly with the simple name of the one
    /// that declares the deployment. Throws <see cref="IsolationException"/> naming the folder and the fix when the
    /// folder or the file is missing.
    /// </summary>
    public static string DirectoryAssembly(string deployment, DeploymentDefinition definition, RuntimeEnv env)
    {
        var assembly = definition.ImplementationType.Assembly;
        var path = Path.Combine(env.Directory!, assembly.GetName().Name + ".dll");
        if (!Directory.Exists(env.Directory))
        {
            throw new IsolationException(deployment,
                $"Deployment '{deployment}': RuntimeEnv directory '{env.Directory}' does not exist. Build the deployment's project into it " +
                $"(dotnet build -o \"{env.Directory}\") or fix the path.");
        }
        if (!File.Exists(path))
        {
            throw new IsolationException(deployment,
                $"Deployment '{deployment}': RuntimeEnv directory '{env.Directory}' has no {assembly.GetName().Name}.dll, the assembly that declares " +
                $"{definition.ImplementationType.FullName}. Point RuntimeEnv.FromDirectory at the build output folder of that project.");
        }
        return path;
    }
}
