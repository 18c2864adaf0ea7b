using System.Globalization;
using System.Net;

namespace Serve.Config;

/// <summary>
/// The <c>cluster</c> section of a config file: makes <c>serve run</c> a node of a multi-node cluster (Serve.Orleans)
/// whose members find each other through a cluster store. Serve core only reads and checks it; the CLI acts on it.
/// </summary>
public sealed class ClusterConfig
{
    /// <summary>The cluster id used when <c>cluster_id</c> is not given.</summary>
    public const string DefaultClusterId = "serve";

    /// <summary><c>store</c>: where the nodes find each other (<c>redis://host:port</c>), or null when the file leaves it to <c>--cluster</c>.</summary>
    public ClusterStoreAddress? Store { get; init; }

    /// <summary><c>cluster_id</c>: the nodes sharing a store and this id form one cluster (default <c>serve</c>).</summary>
    public string ClusterId { get; init; } = DefaultClusterId;

    /// <summary><c>node_labels</c>: this node's labels (e.g. <c>zone: a</c>), for node selectors.</summary>
    public IReadOnlyDictionary<string, string> NodeLabels { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary><c>placement</c>: <c>spread</c> (the default) or <c>pack</c>; null when not given.</summary>
    public string? Placement { get; init; }

    /// <summary><c>silo_port</c>: the port other nodes reach this one on; null or 0 picks a free port.</summary>
    public int? SiloPort { get; init; }

    /// <summary><c>gateway_port</c>: the port Orleans clients connect to; null or 0 for none (Serve nodes do not need one).</summary>
    public int? GatewayPort { get; init; }

    /// <summary>
    /// <c>advertised_address</c>: the IP address other nodes reach this one at; null picks 127.0.0.1 when the store
    /// is on this machine's loopback, else this machine's address.
    /// </summary>
    public string? AdvertisedAddress { get; init; }

    /// <summary>
    /// <c>wire_format</c>: how this node writes calls to other nodes, <c>messagepack</c> (the default), <c>json</c> or
    /// <c>host</c> (the host's boundary serializer); null when not given.
    /// </summary>
    public string? WireFormat { get; init; }

    /// <summary><c>drain_timeout_s</c>: how long a stopping node waits for its replicas' replacements elsewhere; null for the default (30 s).</summary>
    public TimeSpan? DrainTimeout { get; init; }
}

/// <summary>A cluster store's address, <c>redis://host:port</c> (the port defaults to 6379).</summary>
/// <param name="Host">The host name or IP address.</param>
/// <param name="Port">The TCP port.</param>
public sealed record ClusterStoreAddress(string Host, int Port)
{
    /// <summary>Redis' default port, used when the address gives none.</summary>
    public const int DefaultRedisPort = 6379;

    /// <summary>What an address looks like, for error messages.</summary>
    public const string Expected = "redis://host:port, e.g. redis://127.0.0.1:6379";

    /// <summary>True when the store is on this machine's loopback (<c>127.x.x.x</c>, <c>::1</c> or <c>localhost</c>).</summary>
    public bool IsLoopback => Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                              || (IPAddress.TryParse(Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>The address as <c>host:port</c>, the form StackExchange.Redis takes.</summary>
    public string Endpoint => $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <inheritdoc />
    public override string ToString() => $"redis://{Endpoint}";

    /// <summary>Parses <c>redis://host[:port]</c>; on failure <paramref name="reason"/> says what is wrong and what to write.</summary>
    public static bool TryParse(string? text, out ClusterStoreAddress? address, out string? reason)
    {
        address = null;
        reason = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            reason = $"expected {Expected}, got an empty value";
            return false;
        }
        var shown = $"\"{text}\"";
        if (text.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            reason = $"expected {Expected}, got {shown}: TLS (rediss://) is not supported yet; reach Redis over a trusted network or a TLS tunnel";
            return false;
        }
        if (!text.StartsWith("redis://", StringComparison.OrdinalIgnoreCase))
        {
            reason = text.Contains("://", StringComparison.Ordinal)
                ? $"expected {Expected}, got {shown}: only Redis is supported as a cluster store"
                : $"expected {Expected}, got {shown}: write the scheme, redis://{text}";
            return false;
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Host.Length == 0 || Uri.CheckHostName(uri.Host) == UriHostNameType.Unknown)
        {
            reason = $"expected {Expected}, got {shown}: not a host and port";
            return false;
        }
        if (uri.UserInfo.Length > 0)
        {
            reason = $"expected {Expected}, got {shown}: user names and passwords in the address are not supported yet";
            return false;
        }
        if (uri.AbsolutePath is not ("/" or "") || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            reason = $"expected {Expected}, got {shown}: nothing may follow the port (no database number, path or query)";
            return false;
        }
        // Uri reports -1 without a port and 0 for ":0", which no server listens on.
        var port = uri.IsDefaultPort ? DefaultRedisPort : uri.Port;
        if (port is <= 0 or > 65535)
        {
            reason = $"expected {Expected}, got {shown}: the port must be from 1 to 65535";
            return false;
        }
        address = new ClusterStoreAddress(uri.Host, port);
        return true;
    }
}
