using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Serve.Isolation;

/// <summary>
/// Turns values into bytes and back when they cross between two load contexts whose copies of a type differ (an
/// isolated deployment's own types). Values of shared types never go through it. One serializer instance serves
/// one load context, so whatever it caches about that context's types is released with the context.
/// </summary>
/// <remarks>
/// The default is <see cref="JsonBoundarySerializer"/> (System.Text.Json, UTF-8). Plug in another format with
/// <see cref="ServeOptions.BoundarySerializer"/>.
/// </remarks>
public interface IBoundarySerializer
{
    /// <summary>The format's name, shown in errors (e.g. <c>System.Text.Json</c>).</summary>
    string Format { get; }

    /// <summary>Writes <paramref name="value"/> (of runtime type <paramref name="type"/>) to <paramref name="destination"/>.</summary>
    void Serialize(IBufferWriter<byte> destination, object? value, Type type);

    /// <summary>Reads a value of <paramref name="type"/> from <paramref name="source"/>.</summary>
    object? Deserialize(ReadOnlySpan<byte> source, Type type);

    /// <summary>
    /// Checks, without a value, whether values of <paramref name="type"/> can make the round trip; on <c>false</c>,
    /// <paramref name="reason"/> says why in a few words.
    /// </summary>
    bool CanSerialize(Type type, out string? reason);
}

/// <summary>The default <see cref="IBoundarySerializer"/>: System.Text.Json over UTF-8, public properties and fields.</summary>
public sealed class JsonBoundarySerializer : IBoundarySerializer
{
    private readonly JsonSerializerOptions _options;

    /// <summary>Creates a serializer with its own options (and so its own type cache).</summary>
    /// <param name="options">Options to copy; <c>null</c> for the defaults with fields included.</param>
    public JsonBoundarySerializer(JsonSerializerOptions? options = null)
    {
        _options = options is null
            ? new JsonSerializerOptions { IncludeFields = true, TypeInfoResolver = new DefaultJsonTypeInfoResolver() }
            : new JsonSerializerOptions(options);
        _options.MakeReadOnly(populateMissingResolver: true);
    }

    /// <inheritdoc />
    public string Format => "System.Text.Json";

    /// <inheritdoc />
    public void Serialize(IBufferWriter<byte> destination, object? value, Type type)
    {
        using var writer = new Utf8JsonWriter(destination);
        JsonSerializer.Serialize(writer, value, type, _options);
    }

    /// <inheritdoc />
    public object? Deserialize(ReadOnlySpan<byte> source, Type type) => JsonSerializer.Deserialize(source, type, _options);

    /// <inheritdoc />
    public bool CanSerialize(Type type, out string? reason)
    {
        reason = null;
        if (typeof(Delegate).IsAssignableFrom(type))
            reason = "it is a delegate";
        else if (type.IsPointer || type.IsByRefLike || type.IsByRef)
            reason = "it is a pointer or ref struct";
        else if (typeof(Stream).IsAssignableFrom(type) || typeof(Task).IsAssignableFrom(type))
            reason = "it is a stream or task, which holds live state";
        else
        {
            try
            {
                var info = _options.GetTypeInfo(type);
                if (info.Kind == JsonTypeInfoKind.Object && (type.IsAbstract || type.IsInterface) && info.PolymorphismOptions is null)
                    reason = "it is an interface or abstract class, which cannot be created from JSON";
                else if (info.Kind == JsonTypeInfoKind.Object && !type.IsValueType && type.GetConstructors().Length == 0)
                    reason = "it has no public constructor";
            }
            catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
            {
                reason = e.Message;
            }
        }
        return reason is null;
    }
}
