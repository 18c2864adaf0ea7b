using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;

namespace Serve.Isolation;

/// <summary>
/// An <see cref="IBoundarySerializer"/> that writes MessagePack (MessagePack-CSharp 2.x): smaller and faster than JSON
/// for numbers and vectors (a <c>float[]</c> is written as raw 4-byte floats, not decimal text). Records and classes
/// need no attributes: like <see cref="JsonBoundarySerializer"/>, public properties and fields are written by name
/// (a map), and read back through the public constructor whose parameters match them (a record's primary
/// constructor), then settable properties. Arrays, lists, dictionaries, <see cref="Nullable{T}"/>, enums and
/// <c>ReadOnlyMemory&lt;float&gt;</c> members are handled by MessagePack's built-in formatters.
/// </summary>
/// <remarks>
/// Choose it for the whole host with <c>o.BoundarySerializer = () =&gt; new MessagePackBoundarySerializer()</c>, or for
/// one isolated deployment with <c>RuntimeEnv.Isolated().WithBoundaryFormat(BoundaryFormat.MessagePack)</c> (config:
/// <c>runtime_env: { isolated: true, serializer: messagepack }</c>). MessagePack's dynamic resolvers generate code
/// into an assembly that cannot be unloaded, which would pin an isolated context forever; this serializer never
/// uses them. Its formatters are made by reflection and cached in the instance, so they are released with the load
/// context that owns the instance. <c>[MessagePackObject]</c>/<c>[Key]</c> attributes are not needed and are not
/// read (members are written by name).
/// </remarks>
public sealed class MessagePackBoundarySerializer : IBoundarySerializer
{
    private readonly ConcurrentDictionary<Type, IBoxedFormatter> _boxed = new();
    private readonly MessagePackSerializerOptions _options;

    /// <summary>Creates a serializer with its own formatter cache.</summary>
    public MessagePackBoundarySerializer()
    {
        _options = MessagePackSerializerOptions.Standard.WithResolver(new BoundaryResolver());
    }

    /// <inheritdoc />
    public string Format => "MessagePack";

    /// <inheritdoc />
    public void Serialize(IBufferWriter<byte> destination, object? value, Type type)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(type);
        var writer = new MessagePackWriter(destination);
        Boxed(type).Serialize(ref writer, value, _options);
        writer.Flush();
    }

    /// <inheritdoc />
    public object? Deserialize(ReadOnlySpan<byte> source, Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, source.Length));
        try
        {
            source.CopyTo(buffer);
            var reader = new MessagePackReader(new ReadOnlyMemory<byte>(buffer, 0, source.Length));
            return Boxed(type).Deserialize(ref reader, _options);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc />
    public bool CanSerialize(Type type, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(type);
        reason = Unsupported(type);
        if (reason is null)
        {
            try
            {
                Boxed(type).Check();
            }
            catch (Exception e) when (e is FormatterNotRegisteredException or NotSupportedException or InvalidOperationException or ArgumentException or TargetInvocationException)
            {
                reason = (e as TargetInvocationException)?.InnerException?.Message ?? e.Message;
            }
        }
        return reason is null;
    }

    private IBoxedFormatter Boxed(Type type) =>
        _boxed.GetOrAdd(type, static t => (IBoxedFormatter)Activator.CreateInstance(typeof(BoxedFormatter<>).MakeGenericType(t))!);

    internal static string? Unsupported(Type type)
    {
        if (typeof(Delegate).IsAssignableFrom(type))
            return "it is a delegate";
        if (type.IsPointer || type.IsByRefLike || type.IsByRef)
            return "it is a pointer or ref struct";
        if (typeof(Stream).IsAssignableFrom(type) || typeof(Task).IsAssignableFrom(type))
            return "it is a stream or task, which holds live state";
        return null;
    }

    private interface IBoxedFormatter
    {
        void Serialize(ref MessagePackWriter writer, object? value, MessagePackSerializerOptions options);
        object? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options);
        void Check();
    }

    private sealed class BoxedFormatter<T> : IBoxedFormatter
    {
        public void Serialize(ref MessagePackWriter writer, object? value, MessagePackSerializerOptions options) =>
            options.Resolver.GetFormatterWithVerify<T>().Serialize(ref writer, (T)value!, options);

        public object? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            options.Resolver.GetFormatterWithVerify<T>().Deserialize(ref reader, options);

        public void Check()
        {
            if (typeof(T).IsInterface || typeof(T).IsAbstract)
            {
                if (BuiltinResolver.Instance.GetFormatter<T>() is null && DynamicGenericResolver.Instance.GetFormatter<T>() is null)
                    throw new NotSupportedException("it is an interface or abstract class, which cannot be created from MessagePack");
            }
        }
    }

    /// <summary>
    /// Built-in formatters first (primitives, strings, arrays of primitives, DateTime, Guid …), then MessagePack's
    /// generic ones (arrays, lists, dictionaries, nullables, memory; made by reflection, no code generation), then
    /// enums and objects by reflection. Cached per instance.
    /// </summary>
    private sealed class BoundaryResolver : IFormatterResolver
    {
        private readonly ConcurrentDictionary<Type, object> _formatters = new();

        public IMessagePackFormatter<T>? GetFormatter<T>()
        {
            if (_formatters.TryGetValue(typeof(T), out var cached))
                return (IMessagePackFormatter<T>)cached;
            var created = Create<T>();
            if (created is null)
                return null;
            return (IMessagePackFormatter<T>)_formatters.GetOrAdd(typeof(T), created);
        }

        private static IMessagePackFormatter<T>? Create<T>()
        {
            var type = typeof(T);
            if (BuiltinResolver.Instance.GetFormatter<T>() is { } builtin)
                return builtin;
            if (type.IsEnum)
                return (IMessagePackFormatter<T>)Activator.CreateInstance(typeof(EnumFormatter<>).MakeGenericType(type))!;
            if (DynamicGenericResolver.Instance.GetFormatter<T>() is { } generic)
                return generic;
            if (type == typeof(object) || type.IsInterface || type.IsAbstract || Unsupported(type) is not null)
                return null;
            return new ObjectFormatter<T>();
        }
    }

    private sealed class EnumFormatter<T> : IMessagePackFormatter<T> where T : struct, Enum
    {
        public void Serialize(ref MessagePackWriter writer, T value, MessagePackSerializerOptions options) =>
            writer.Write(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));

        public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            (T)Enum.ToObject(typeof(T), reader.ReadInt64());
    }

    /// <summary>Public properties and fields by name, like System.Text.Json with fields included.</summary>
    private sealed class ObjectFormatter<T> : IMessagePackFormatter<T>
    {
        private readonly Member[] _members;
        private readonly Dictionary<string, int> _byName;
        private readonly ConstructorInfo? _constructor;
        private readonly int[] _constructorMembers;
        private readonly ParameterInfo[] _parameters;

        public ObjectFormatter()
        {
            var type = typeof(T);
            var members = new List<Member>();
            foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (p.GetIndexParameters().Length == 0 && p.GetMethod is { IsPublic: true })
                    members.Add(new Member(p.Name, p.PropertyType, p.GetValue, p.SetMethod is { IsPublic: true } ? p.SetValue : null));
            }
            foreach (var f in type.GetFields(BindingFlags.Public | BindingFlags.Instance))
                members.Add(new Member(f.Name, f.FieldType, f.GetValue, f.IsInitOnly ? null : f.SetValue));
            _members = [.. members];
            _byName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < _members.Length; i++)
                _byName.TryAdd(_members[i].Name, i);

            // The public constructor whose parameters all name members, with the most parameters (a record's primary one).
            foreach (var c in type.GetConstructors())
            {
                var parameters = c.GetParameters();
                if (parameters.All(p => p.Name is not null && _byName.TryGetValue(p.Name, out var m) && _members[m].Type == p.ParameterType)
                    && (_constructor is null || parameters.Length > _parameters!.Length))
                {
                    _constructor = c;
                    _parameters = parameters;
                }
            }
            _parameters ??= [];
            _constructorMembers = _parameters.Select(p => _byName[p.Name!]).ToArray();
            if (_constructor is null && !type.IsValueType)
                throw new NotSupportedException($"{type} has no public constructor whose parameters match its public properties");
        }

        public void Serialize(ref MessagePackWriter writer, T value, MessagePackSerializerOptions options)
        {
            if (value is null)
            {
                writer.WriteNil();
                return;
            }
            writer.WriteMapHeader(_members.Length);
            foreach (var member in _members)
            {
                writer.Write(member.Name);
                member.Formatter.Serialize(ref writer, member.Get(value), options);
            }
        }

        public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil())
                return default!;
            var values = new object?[_members.Length];
            var seen = new bool[_members.Length];
            var count = reader.ReadMapHeader();
            options.Security.DepthStep(ref reader);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var name = reader.ReadString();
                    if (name is not null && _byName.TryGetValue(name, out var index))
                    {
                        values[index] = _members[index].Formatter.Deserialize(ref reader, options);
                        seen[index] = true;
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            finally
            {
                reader.Depth--;
            }

            object instance;
            var inConstructor = new bool[_members.Length];
            if (_constructor is not null)
            {
                var arguments = new object?[_parameters.Length];
                for (var i = 0; i < arguments.Length; i++)
                {
                    var m = _constructorMembers[i];
                    inConstructor[m] = true;
                    arguments[i] = seen[m] ? values[m]
                        : _parameters[i].HasDefaultValue ? _parameters[i].DefaultValue
                        : _parameters[i].ParameterType.IsValueType ? Activator.CreateInstance(_parameters[i].ParameterType) : null;
                }
                instance = _constructor.Invoke(arguments);
            }
            else
            {
                instance = Activator.CreateInstance(typeof(T))!;
            }
            for (var i = 0; i < _members.Length; i++)
            {
                if (seen[i] && !inConstructor[i] && _members[i].Set is { } set)
                    set(instance, values[i]);
            }
            return (T)instance;
        }
    }

    private sealed class Member(string name, Type type, Func<object?, object?> get, Action<object?, object?>? set)
    {
        private IBoxedFormatter? _formatter;

        public string Name { get; } = name;
        public Type Type { get; } = type;
        public Func<object?, object?> Get { get; } = get;
        public Action<object?, object?>? Set { get; } = set;

        public IBoxedFormatter Formatter => _formatter ??= (IBoxedFormatter)Activator.CreateInstance(typeof(BoxedFormatter<>).MakeGenericType(Type))!;
    }
}
