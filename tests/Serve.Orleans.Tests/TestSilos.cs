using Orleans.Configuration;
using Orleans.Hosting;

namespace Serve.Orleans.Tests;

/// <summary>Silo settings the cluster tests share.</summary>
internal static class TestSilos
{
    /// <summary>Short membership probes, so a killed silo is declared dead within seconds instead of Orleans' default minute.</summary>
    public static void UseShortMembershipProbes(ISiloBuilder silo) =>
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromMilliseconds(500);
            o.NumMissedProbesLimit = 1;
            o.NumVotesForDeathDeclaration = 1;
            o.TableRefreshTimeout = TimeSpan.FromMilliseconds(500);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(1);
        });
}
