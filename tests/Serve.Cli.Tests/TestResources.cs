using System.Runtime.CompilerServices;

namespace Serve.Cli.Tests;

internal static class TestResources
{
    /// <summary>
    /// Most tests are not about CPU capacity, but a host's default pool is the processor count and each replica
    /// reserves one CPU, so a 2-core CI machine could start only two replicas. Give every host in this test run room
    /// (the documented SERVE_NUM_CPUS override); resource tests set ServeOptions.Resources explicitly.
    /// </summary>
#pragma warning disable CA2255 // a module initializer in a test assembly is intended here
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void GiveHostsRoom() => Environment.SetEnvironmentVariable(ResourceOptions.NumCpusVariable, "64");
}
