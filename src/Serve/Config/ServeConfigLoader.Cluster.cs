using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serve.Config;

// The cluster section: where the nodes meet (store), who this node is (labels, ports, address).
public static partial class ServeConfigLoader
{
    private static readonly string[] ClusterKeys = ["store", "cluster_id", "node_labels", "placement", "silo_port", "gateway_port", "advertised_address", "wire_format", "drain_timeout_s"];

    private static ClusterConfig? ReadCluster(JsonNode? node, string at, List<ServeConfigError> errors)
    {
        if (node is not JsonObject obj)
        {
            errors.Add(new(at, $"expected a mapping with keys {List(ClusterKeys)}, got {Show(node)}"));
            return null;
        }
        var before = errors.Count;
        CheckKeys(obj, at, ClusterKeys, errors);
        ClusterStoreAddress? store = null;
        if (obj.TryGetPropertyValue("store", out var s) && ReadString(s, $"{at}.store", errors) is { } text)
        {
            if (ClusterStoreAddress.TryParse(text, out var parsed, out var reason))
                store = parsed;
            else
                errors.Add(new($"{at}.store", reason!));
        }
        var clusterId = ClusterConfig.DefaultClusterId;
        if (obj.TryGetPropertyValue("cluster_id", out var id) && ReadString(id, $"{at}.cluster_id", errors) is { } name)
        {
            if (name.Length is 0 or > 100 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                errors.Add(new($"{at}.cluster_id", $"expected 1 to 100 ASCII letters, digits, '-', '_' or '.', got {Show(id)}"));
            else
                clusterId = name;
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (obj.TryGetPropertyValue("node_labels", out var l))
        {
            if (l is not JsonObject map)
                errors.Add(new($"{at}.node_labels", $"expected a mapping of label name to value (e.g. {{ zone: a }}), got {Show(l)}"));
            else
            {
                foreach (var (key, value) in map)
                {
                    if (string.IsNullOrWhiteSpace(key))
                        errors.Add(new($"{at}.node_labels", "a label has an empty name; give every label a name"));
                    else if (value is JsonValue v && v.GetValueKind() is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
                        labels[key] = v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString();
                    else
                        errors.Add(new($"{at}.node_labels.{key}", $"expected a string, got {Show(value)}"));
                }
            }
        }
        string? placement = null;
        if (obj.TryGetPropertyValue("placement", out var p) && ReadString(p, $"{at}.placement", errors) is { } how)
        {
            if (how is "spread" or "pack")
                placement = how;
            else
                errors.Add(new($"{at}.placement", $"expected 'spread' (the default: across as many nodes as possible) or 'pack' (on as few nodes as possible), got {Show(p)}"));
        }
        int? siloPort = obj.TryGetPropertyValue("silo_port", out var sp) ? ReadInt(sp, $"{at}.silo_port", 0, 65535, "an integer from 0 to 65535 (0 picks a free port)", errors) : null;
        int? gatewayPort = obj.TryGetPropertyValue("gateway_port", out var gp) ? ReadInt(gp, $"{at}.gateway_port", 0, 65535, "an integer from 0 to 65535 (0: no gateway)", errors) : null;
        string? advertised = null;
        if (obj.TryGetPropertyValue("advertised_address", out var a) && ReadString(a, $"{at}.advertised_address", errors) is { } address)
        {
            if (!IPAddress.TryParse(address, out var ip) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)
                || ip.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
                errors.Add(new($"{at}.advertised_address", $"expected the IP address other nodes reach this one at (e.g. \"10.0.0.5\"; not 0.0.0.0 or ::), got {Show(a)}"));
            else
                advertised = ip.ToString();
        }
        string? wireFormat = null;
        if (obj.TryGetPropertyValue("wire_format", out var w) && ReadString(w, $"{at}.wire_format", errors) is { } format)
        {
            if (format is "messagepack" or "json" or "host")
                wireFormat = format;
            else
                errors.Add(new($"{at}.wire_format", $"expected 'messagepack' (the default), 'json' or 'host' (the host's boundary serializer), got {Show(w)}"));
        }
        TimeSpan? drain = obj.TryGetPropertyValue("drain_timeout_s", out var dt) ? ReadSeconds(dt, $"{at}.drain_timeout_s", allowZero: true, errors) : null;
        if (siloPort is { } silo && silo != 0 && silo == gatewayPort)
            errors.Add(new($"{at}.gateway_port", $"the gateway port {silo} is also the silo_port; give them different ports"));
        if (errors.Count > before)
            return null;
        return new ClusterConfig
        {
            Store = store,
            ClusterId = clusterId,
            NodeLabels = labels,
            Placement = placement,
            SiloPort = siloPort,
            GatewayPort = gatewayPort,
            AdvertisedAddress = advertised,
            WireFormat = wireFormat,
            DrainTimeout = drain,
        };
    }
}
