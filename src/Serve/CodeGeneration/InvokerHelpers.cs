using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Serve.CodeGeneration;

/// <summary>Helpers used by generated invokers and factories; not for user code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class InvokerHelpers
{
    /// <summary>
    /// How <see cref="JsonElement"/> arguments (HTTP bodies and query values) are read: System.Text.Json web defaults
    /// (camelCase, case-insensitive names) made strict: a constructor parameter without a default and a
    /// <c>required</c> member must be present, <c>null</c> is refused for non-nullable members, and a property that
    /// maps to no member is an error.
    /// </summary>
    internal static readonly JsonSerializerOptions StrictJson = new(JsonSerializerDefaults.Web)
    {
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary><see cref="StrictJson"/>, but properties that map to no member are skipped (<see cref="DeploymentOptions.AllowUnknownJsonProperties"/>).</summary>
    internal static readonly JsonSerializerOptions LenientJson = new(StrictJson) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };

    /// <summary>The options for JSON arguments of the current call: <see cref="LenientJson"/> when the HTTP request's deployment allows unknown properties.</summary>
    internal static JsonSerializerOptions JsonOptions =>
        Observability.HttpRequestScope.Current is { AllowUnknownJsonProperties: true } ? LenientJson : StrictJson;

    /// <summary>
    /// Reads boxed argument <paramref name="index"/> as <typeparamref name="T"/>; a <see cref="JsonElement"/> is
    /// deserialized with web defaults (case-insensitive names), strictly: missing required values, <c>null</c> for
    /// non-nullable members and unknown properties are errors.
    /// </summary>
    /// <exception cref="ArgumentException">The argument is missing or of another type; the message names the method and parameter.</exception>
    public static T Argument<T>(object?[] arguments, int index, string method, string parameter)
    {
        if ((uint)index >= (uint)arguments.Length)
            throw BindingFailure($"Method '{method}' expects an argument for parameter '{parameter}' at position {index}, but only {arguments.Length} were given.");
        var value = arguments[index];
        if (value is T t)
            return t;
        if (value is null && default(T) is null)
            return default!;
        if (value is JsonElement json)
        {
            try
            {
                return json.Deserialize<T>(JsonOptions)!;
            }
            catch (JsonException e)
            {
                throw BindingFailure($"Method '{method}' parameter '{parameter}' expects {typeof(T)}; the JSON value could not be read: {e.Message}", e);
            }
        }
        throw BindingFailure($"Method '{method}' parameter '{parameter}' expects {typeof(T)}, but got " +
                                    (value is null ? "null" : value.GetType().ToString()) + ".");
    }

    /// <summary>
    /// <see cref="Argument{T}"/> for a parameter of a non-nullable reference type: a JSON <c>null</c> is refused. (A
    /// <c>null</c> passed from code is left to the method, as a direct call would.)
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Argument{T}"/>, or the JSON value is <c>null</c>; the message names the method and parameter.</exception>
    public static T ArgumentNotNull<T>(object?[] arguments, int index, string method, string parameter)
    {
        var value = Argument<T>(arguments, index, method, parameter);
        if (value is null && arguments[index] is JsonElement)
            throw BindingFailure($"Method '{method}' parameter '{parameter}' is a non-nullable {typeof(T)}, but the JSON value is null; " +
                                        $"send a value, or declare the parameter nullable ({typeof(T).Name}?) to accept null.");
        return value;
    }

    /// <summary>Checks the number of boxed arguments.</summary>
    public static void ExpectArguments(object?[] arguments, int count, string method)
    {
        if (arguments.Length != count)
            throw BindingFailure($"Method '{method}' takes {count} argument(s), but {arguments.Length} were given.");
    }

    /// <summary>
    /// <see cref="Argument{T}"/> for a parameter type known only at run time (a call bound before it crosses to another
    /// node): the same JSON options and the same errors.
    /// </summary>
    internal static object? Argument(object? value, Type type, string method, string parameter)
    {
        if (value is null || type.IsInstanceOfType(value))
            return value;
        if (value is JsonElement json)
        {
            try
            {
                return json.Deserialize(type, JsonOptions);
            }
            catch (JsonException e)
            {
                throw BindingFailure($"Method '{method}' parameter '{parameter}' expects {type}; the JSON value could not be read: {e.Message}", e);
            }
        }
        throw BindingFailure($"Method '{method}' parameter '{parameter}' expects {type}, but got {value.GetType()}.");
    }

    private const string BindingFailureKey = "Serve.ArgumentBinding";

    /// <summary>
    /// The error for a boxed argument that cannot be read as its parameter's type: a plain <see cref="ArgumentException"/>
    /// (what callers of untyped handles catch), marked so that <see cref="IsBindingFailure"/> tells it from a method's own
    /// <see cref="ArgumentException"/> by a value it carries, not by where it was thrown.
    /// </summary>
    internal static ArgumentException BindingFailure(string message, Exception? inner = null)
    {
        var e = new ArgumentException(message, inner);
        e.Data[BindingFailureKey] = true;
        return e;
    }

    /// <summary>True for the error the invoker throws when a boxed argument does not fit its parameter (the HTTP ingress answers it 400).</summary>
    internal static bool IsBindingFailure(Exception e) => e is ArgumentException && e.Data[BindingFailureKey] is true;

    /// <summary>Boxes the result of a value method.</summary>
    public static ValueTask<object?> Box<T>(ValueTask<T> task) =>
        task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : BoxAsync(task);

    private static async ValueTask<object?> BoxAsync<T>(ValueTask<T> task) => await task.ConfigureAwait(false);

    /// <summary>Turns a void method's completion into a <c>null</c> result.</summary>
    public static ValueTask<object?> Box(ValueTask task)
    {
        if (!task.IsCompletedSuccessfully)
            return BoxAsync(task);
        task.GetAwaiter().GetResult(); // releases a pooled IValueTaskSource
        return new ValueTask<object?>((object?)null);
    }

    private static async ValueTask<object?> BoxAsync(ValueTask task)
    {
        await task.ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Returns a stream method's enumerable as the boxed result: an <see cref="IAsyncEnumerable{T}"/> of
    /// <see cref="object"/> over <paramref name="stream"/> (each item boxed), so untyped callers can enumerate it; it is
    /// also the <see cref="IAsyncEnumerable{T}"/> itself.
    /// </summary>
    public static ValueTask<object?> BoxStream<T>(IAsyncEnumerable<T> stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new(new BoxedStream<T>(stream));
    }

    private abstract class BoxedStream : IAsyncEnumerable<object?>
    {
        public abstract IAsyncEnumerator<object?> GetAsyncEnumerator(CancellationToken cancellationToken = default);
    }

    // Also an IAsyncEnumerable<T> (the user's stream, unboxed) for callers that know T.
    private sealed class BoxedStream<T>(IAsyncEnumerable<T> stream) : BoxedStream, IAsyncEnumerable<T>
    {
        public override IAsyncEnumerator<object?> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
            new Enumerator(stream.GetAsyncEnumerator(cancellationToken));

        IAsyncEnumerator<T> IAsyncEnumerable<T>.GetAsyncEnumerator(CancellationToken cancellationToken) =>
            stream.GetAsyncEnumerator(cancellationToken);

        private sealed class Enumerator(IAsyncEnumerator<T> inner) : IAsyncEnumerator<object?>
        {
            public object? Current => inner.Current;

            public ValueTask<bool> MoveNextAsync() => inner.MoveNextAsync();

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }

    /// <summary>The exception for a method id the invoker does not know.</summary>
    public static Exception UnknownMethod(string deployment, int methodId) =>
        new InvalidOperationException($"Deployment '{deployment}' has no method with id {methodId}; the caller and the deployment were built from different code. Rebuild and redeploy.");

    /// <summary>Converts a user config to <typeparamref name="TConfig"/>: as is when it already is one, else through JSON.</summary>
    /// <exception cref="ArgumentException">The config cannot be converted; the message names the deployment and type.</exception>
    public static TConfig ConvertUserConfig<TConfig>(object? config, string deployment)
    {
        if (config is TConfig t)
            return t;
        try
        {
            var json = config is JsonElement e ? e : JsonSerializer.SerializeToElement(config, config?.GetType() ?? typeof(object));
            return json.Deserialize<TConfig>()!;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException)
        {
            throw new ArgumentException(
                $"Deployment '{deployment}': UserConfig of type {config?.GetType().ToString() ?? "null"} cannot be converted to {typeof(TConfig)} " +
                $"for IReconfigurable<{typeof(TConfig).Name}>: {e.Message}. Set UserConfig to a {typeof(TConfig).Name} or to JSON of its shape.", e);
        }
    }

    /// <summary>The placeholder instance of a function deployment (its method is static).</summary>
    public static object FunctionInstance { get; } = new();
}
