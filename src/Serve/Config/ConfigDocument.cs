using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Serve.Config;

/// <summary>
/// Turns a config document (YAML or JSON text) into a <see cref="JsonNode"/> tree within fixed limits, so that hostile
/// input (a deeply nested document, a "billion laughs" of YAML aliases, a duplicate key) is a
/// <see cref="ConfigDocumentException"/> with a key path, never a stack overflow, an out-of-memory or an unhandled
/// exception. Both parsers stream: the YAML one walks parser events with its own stack (YamlDotNet's representation
/// model recurses once per nesting level and overflows the stack on 100 KB of <c>[</c>), the JSON one is
/// <see cref="JsonDocument"/> with <see cref="MaxDepth"/>.
/// </summary>
internal static class ConfigDocument
{
    /// <summary>The deepest nesting of mappings and lists accepted (System.Text.Json's default, too).</summary>
    public const int MaxDepth = 64;

    /// <summary>The most values (scalars, mappings, lists) a document may hold, counting every node an alias repeats.</summary>
    public const int MaxNodes = 100_000;

    public static JsonNode? ParseJson(string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
                MaxDepth = MaxDepth,
            });
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            if (e.Message.Contains("maximum configured depth", StringComparison.Ordinal))
                throw new ConfigDocumentException("$", $"nested more than {MaxDepth} levels deep{where}; a Serve config needs only a few levels");
            throw new ConfigDocumentException("$", $"not valid JSON: {e.Message}");
        }
        using (document)
        {
            var count = 0;
            return FromElement(document.RootElement, "$", ref count);
        }
    }

    private static JsonNode? FromElement(JsonElement element, string path, ref int count)
    {
        if (++count > MaxNodes)
            throw TooMany(path);
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var obj = new JsonObject();
                foreach (var property in element.EnumerateObject())
                {
                    var at = Child(path, property.Name);
                    if (obj.ContainsKey(property.Name))
                        throw Duplicate(at, property.Name, null);
                    // Depth is bounded by MaxDepth, so recursing here is safe.
                    obj[property.Name] = FromElement(property.Value, at, ref count);
                }
                return obj;
            case JsonValueKind.Array:
                var array = new JsonArray();
                var i = 0;
                foreach (var item in element.EnumerateArray())
                    array.Add(FromElement(item, $"{path}[{i++}]", ref count));
                return array;
            case JsonValueKind.String:
                return JsonValue.Create(element.GetString());
            case JsonValueKind.Number:
                return JsonNode.Parse(element.GetRawText());
            case JsonValueKind.True:
                return JsonValue.Create(true);
            case JsonValueKind.False:
                return JsonValue.Create(false);
            default:
                return null;
        }
    }

    public static JsonNode? ParseYaml(string text)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, Anchored>(StringComparer.Ordinal);
        var stack = new Stack<Frame>();
        var count = 0;
        var documents = 0;
        JsonNode? root = null;
        try
        {
            while (parser.MoveNext())
            {
                var e = parser.Current!;
                switch (e)
                {
                    case StreamStart or StreamEnd or DocumentEnd or Comment:
                        break;
                    case DocumentStart:
                        if (++documents > 1)
                            throw new ConfigDocumentException("$", $"the document holds more than one YAML document (a second starts at line {e.Start.Line}); use one");
                        break;
                    case Scalar scalar when stack.TryPeek(out var map) && map.Node is JsonObject && map.Key is null:
                        map.Key = scalar.Value;
                        if (((JsonObject)map.Node).ContainsKey(scalar.Value))
                            throw Duplicate(Child(map.Path, scalar.Value), scalar.Value, e.Start.Line);
                        break;
                    case MappingStart or SequenceStart or AnchorAlias when stack.TryPeek(out var map) && map.Node is JsonObject && map.Key is null:
                        throw new ConfigDocumentException(map.Path, $"line {e.Start.Line}: mapping keys must be plain strings");
                    case Scalar scalar:
                    {
                        var path = NextPath(stack);
                        if (++count > MaxNodes)
                            throw TooMany(path);
                        var node = ScalarValue(scalar);
                        if (!scalar.Anchor.IsEmpty)
                            anchors[scalar.Anchor.Value] = new Anchored(node, 1, 0);
                        Add(stack, node, ref root);
                        break;
                    }
                    case AnchorAlias alias:
                    {
                        var path = NextPath(stack);
                        if (!anchors.TryGetValue(alias.Value.Value, out var anchored))
                            throw new ConfigDocumentException(path, $"line {e.Start.Line}: alias *{alias.Value.Value} refers to no anchor defined before it (or to a node that contains the alias itself)");
                        count += anchored.Count;
                        if (count > MaxNodes)
                            throw TooMany(path, alias.Value.Value);
                        if (stack.Count + anchored.Height > MaxDepth)
                            throw TooDeep(path, e.Start);
                        if (stack.TryPeek(out var parent))
                            parent.Height = Math.Max(parent.Height, anchored.Height);
                        Add(stack, anchored.Node?.DeepClone(), ref root);
                        break;
                    }
                    case NodeEvent start and (MappingStart or SequenceStart):
                    {
                        var path = NextPath(stack);
                        if (++count > MaxNodes)
                            throw TooMany(path);
                        if (stack.Count >= MaxDepth)
                            throw TooDeep(path, e.Start);
                        JsonNode node = start is MappingStart ? new JsonObject() : new JsonArray();
                        stack.Push(new Frame(node, path, start.Anchor.IsEmpty ? null : start.Anchor.Value, count));
                        break;
                    }
                    case MappingEnd or SequenceEnd:
                    {
                        var frame = stack.Pop();
                        if (frame.Anchor is { } name)
                            anchors[name] = new Anchored(frame.Node, count - frame.CountBefore + 1, frame.Height + 1);
                        if (stack.TryPeek(out var parent))
                            parent.Height = Math.Max(parent.Height, frame.Height + 1);
                        Add(stack, frame.Node, ref root);
                        break;
                    }
                }
            }
        }
        catch (YamlException e)
        {
            throw new ConfigDocumentException("$", $"not valid YAML: {e.Message}");
        }
        return root;
    }

    /// <summary>Puts a finished node where the parser is: the value of a mapping's pending key, the next list item, or the root.</summary>
    private static void Add(Stack<Frame> stack, JsonNode? node, ref JsonNode? root)
    {
        if (!stack.TryPeek(out var parent))
        {
            root = node;
            return;
        }
        if (parent.Node is JsonObject obj)
        {
            obj[parent.Key!] = node;
            parent.Key = null;
        }
        else
        {
            ((JsonArray)parent.Node).Add(node);
        }
    }

    private static string NextPath(Stack<Frame> stack) =>
        !stack.TryPeek(out var parent) ? "$"
        : parent.Node is JsonObject ? Child(parent.Path, parent.Key!)
        : $"{parent.Path}[{((JsonArray)parent.Node).Count}]";

    internal static string Child(string path, string key) => path == "$" ? key : $"{path}.{key}";

    private static ConfigDocumentException Duplicate(string path, string key, long? line) =>
        new(path, $"key '{key}' appears twice in the same mapping{(line is { } l ? $" (again at line {l})" : "")}; keep one");

    private static ConfigDocumentException TooDeep(string path, Mark at) =>
        new(path, $"nested more than {MaxDepth} levels deep (line {at.Line}, column {at.Column}); a Serve config needs only a few levels");

    private static ConfigDocumentException TooMany(string path, string? alias = null) =>
        new(path, $"the document holds more than {MaxNodes.ToString("N0", CultureInfo.InvariantCulture)} values" +
                  (alias is null ? "" : $" once alias *{alias} is expanded (each alias counts every value it repeats)") +
                  "; a Serve config needs far fewer");

    /// <summary>A plain scalar is typed as YAML 1.2's core schema does; a quoted one is always a string.</summary>
    internal static JsonNode? ScalarValue(Scalar scalar)
    {
        var s = scalar.Value ?? "";
        if (scalar.Style is not ScalarStyle.Plain)
            return JsonValue.Create(s);
        switch (s)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }
        if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
            return JsonNode.Parse(l.ToString(CultureInfo.InvariantCulture));
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && !double.IsNaN(d) && !double.IsInfinity(d))
            return JsonNode.Parse(d.ToString("R", CultureInfo.InvariantCulture));
        return JsonValue.Create(s);
    }

    private sealed class Frame(JsonNode node, string path, string? anchor, int countBefore)
    {
        public JsonNode Node { get; } = node;
        public string Path { get; } = path;
        public string? Anchor { get; } = anchor;
        /// <summary>The node count once this node itself was counted: what it adds is the count at its end minus this, plus one.</summary>
        public int CountBefore { get; } = countBefore;
        /// <summary>How many levels of containers lie below this one.</summary>
        public int Height { get; set; }
        /// <summary>In a mapping: the key read, waiting for its value.</summary>
        public string? Key { get; set; }
    }

    private readonly record struct Anchored(JsonNode? Node, int Count, int Height);
}

/// <summary>A config document broke a limit or a rule before it could be read into a tree.</summary>
internal sealed class ConfigDocumentException(string path, string reason) : Exception(reason)
{
    public string Path { get; } = path;
}
