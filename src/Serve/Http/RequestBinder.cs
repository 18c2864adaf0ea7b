using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Serve.CodeGeneration;

namespace Serve.Http;

/// <summary>
/// Turns a request into the arguments of one call: a call method taking the request itself gets it; a GET binds the
/// query string; a POST or PUT binds its JSON body (an array of the arguments, an object by parameter name, or the one
/// argument); an <c>[HttpGet]</c>-style endpoint binds route, query, header and body values. A request that does not
/// fit throws <see cref="RequestBindingException"/> (or the <see cref="JsonException"/> of a malformed body).
/// </summary>
internal static class RequestBinder
{
    public static bool IsRequestType(Type type) => type == typeof(HttpRequest) || type == typeof(HttpContext);

    public static bool TakesOnlyRequest(DeploymentMethod method) =>
        method.ParameterTypes.Length > 0 && Array.TrueForAll(method.ParameterTypes, IsRequestType);

    /// <summary>
    /// Picks the call method and binds its arguments. TakesRequest is true when the method holds the
    /// live request (it then gets the <see cref="HttpRequest"/>/<see cref="HttpContext"/> by reference: the replica is in-process).
    /// </summary>
    public static async ValueTask<(DeploymentMethod Method, object?[] Arguments, bool TakesRequest)> BindCallAsync(
        DeploymentMethod[] calls, HttpContext context, bool allowUnknownJsonProperties, CancellationToken cancellationToken)
    {
        if (Array.Find(calls, TakesOnlyRequest) is { } raw)
            return (raw, RequestArguments(raw, context), true);
        var request = context.Request;
        if (HttpMethods.IsGet(request.Method))
        {
            var (method, arguments) = BindQuery(calls, request.Query);
            return (method, arguments, false);
        }
        var (bodyMethod, bodyArguments) = await BindBodyAsync(calls, request, allowUnknownJsonProperties, cancellationToken).ConfigureAwait(false);
        return (bodyMethod, bodyArguments, false);
    }

    private static object?[] RequestArguments(DeploymentMethod method, HttpContext context)
    {
        var arguments = new object?[method.ParameterTypes.Length];
        for (var i = 0; i < arguments.Length; i++)
            arguments[i] = method.ParameterTypes[i] == typeof(HttpRequest) ? context.Request : context;
        return arguments;
    }

    /// <summary>Binds the arguments of an <c>[HttpGet]</c>-style endpoint from route values, the query, headers and the JSON body.</summary>
    public static async ValueTask<object?[]> BindEndpointAsync(HttpEndpointRoutes.Route endpoint, RouteValueDictionary values, HttpRequest request,
        bool allowUnknownJsonProperties, CancellationToken cancellationToken)
    {
        var method = endpoint.Method;
        var arguments = new object?[method.ParameterTypes.Length];
        var bindings = endpoint.Endpoint.Parameters;
        for (var i = 0; i < arguments.Length; i++)
        {
            var type = method.ParameterTypes[i];
            var binding = i < bindings.Length ? bindings[i] : new HttpParameterBinding { Source = HttpParameterSource.Auto, Name = method.ParameterNames[i] };
            var source = binding.Source;
            if (source == HttpParameterSource.Auto)
                source = values.ContainsKey(binding.Name) ? HttpParameterSource.Route : HttpParameterSource.Query;
            string? text = source switch
            {
                HttpParameterSource.Route => values.TryGetValue(binding.Name, out var v) ? Convert.ToString(v, CultureInfo.InvariantCulture) : null,
                HttpParameterSource.Query => request.Query.TryGetValue(binding.Name, out var q) ? q.ToString() : null,
                HttpParameterSource.Header => request.Headers.TryGetValue(binding.Name, out var h) ? h.ToString() : null,
                _ => null,
            };
            if (source == HttpParameterSource.Body)
            {
                using var buffer = new MemoryStream();
                await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (buffer.Length == 0)
                {
                    if (!binding.HasDefault)
                        throw new RequestBindingException($"the request body is empty, but parameter '{method.ParameterNames[i]}' takes it as JSON.");
                    arguments[i] = binding.DefaultValue;
                    continue;
                }
                var json = allowUnknownJsonProperties ? InvokerHelpers.LenientJson : InvokerHelpers.StrictJson;
                arguments[i] = JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), type, json);
                continue;
            }
            if (text is null)
            {
                if (!binding.HasDefault)
                    throw new RequestBindingException($"missing {source.ToString().ToLowerInvariant()} value '{binding.Name}'.");
                arguments[i] = binding.DefaultValue;
                continue;
            }
            arguments[i] = ConvertText(text, type, binding.Name);
        }
        return arguments;
    }

    private static object? ConvertText(string text, Type type, string name)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(string) || underlying == typeof(object))
            return text;
        try
        {
            return FromQueryValue(text, type).Deserialize(type, JsonSerializerOptions.Web);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or FormatException or InvalidOperationException)
        {
            throw new RequestBindingException($"'{text}' is not a valid {underlying.Name} for '{name}'.");
        }
    }

    public static (DeploymentMethod, object?[]) BindQuery(DeploymentMethod[] calls, IQueryCollection query)
    {
        // The call method with the most parameters that the query string covers.
        DeploymentMethod? chosen = null;
        foreach (var m in calls.OrderByDescending(m => m.ParameterNames.Length))
        {
            if (m.ParameterNames.All(query.ContainsKey))
            {
                chosen = m;
                break;
            }
        }
        if (chosen is null)
        {
            var m = calls.OrderBy(m => m.ParameterNames.Length).First();
            var missing = m.ParameterNames.First(n => !query.ContainsKey(n));
            throw new RequestBindingException($"missing query parameter '{missing}' (the call takes {Describe(m)}).");
        }
        var arguments = new object?[chosen.ParameterNames.Length];
        for (var i = 0; i < arguments.Length; i++)
            arguments[i] = FromQueryValue(query[chosen.ParameterNames[i]].ToString(), chosen.ParameterTypes[i]);
        return (chosen, arguments);
    }

    private static JsonElement FromQueryValue(string text, Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(string) || underlying == typeof(char) || underlying == typeof(Guid) || underlying == typeof(DateTime) ||
            underlying == typeof(DateTimeOffset) || underlying == typeof(DateOnly) || underlying == typeof(TimeOnly) || underlying == typeof(TimeSpan) ||
            underlying.IsEnum)
            return JsonSerializer.SerializeToElement(text);
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(text);
        }
    }

    public static async Task<(DeploymentMethod, object?[])> BindBodyAsync(DeploymentMethod[] calls, HttpRequest request, bool allowUnknown, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (buffer.Length == 0)
        {
            var none = calls.FirstOrDefault(m => m.ParameterNames.Length == 0);
            if (none is not null)
                return (none, []);
            var first = calls.OrderBy(m => m.ParameterNames.Length).First();
            throw new RequestBindingException($"the request body is empty, but the call takes {Describe(first)}; send a JSON array of the arguments or a JSON object with one property per parameter.");
        }

        using var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
        var root = document.RootElement;

        if (root.ValueKind == JsonValueKind.Array)
        {
            var single = calls.FirstOrDefault(m => m.ParameterNames.Length == 1 && IsSequence(m.ParameterTypes[0]));
            var byCount = calls.FirstOrDefault(m => m.ParameterNames.Length == root.GetArrayLength() && !(m.ParameterNames.Length == 1 && IsSequence(m.ParameterTypes[0])));
            if (single is not null && byCount is null)
                return (single, [root.Clone()]);
            if (byCount is not null)
                return (byCount, root.EnumerateArray().Select(e => (object?)e.Clone()).ToArray());
            throw new RequestBindingException($"the JSON array has {root.GetArrayLength()} element(s), but the call takes {Describe(calls[0])}.");
        }

        if (root.ValueKind == JsonValueKind.Object)
        {
            // A one-parameter call gets the whole object (ASP.NET Core binds one complex parameter from the body) unless
            // the object is a wrapper: its only property is named like the parameter and the parameter's type has no
            // property of that name.
            foreach (var m in calls.OrderByDescending(m => m.ParameterNames.Length))
            {
                if (m.ParameterNames.Length == 1 && !IsWrapper(root, m))
                    continue;
                if (m.ParameterNames.Length == 0)
                    continue;
                var arguments = new object?[m.ParameterNames.Length];
                var all = true;
                for (var i = 0; i < arguments.Length && all; i++)
                {
                    if (TryGetProperty(root, m.ParameterNames[i], out var value))
                        arguments[i] = value.Clone();
                    else
                        all = false;
                }
                if (all)
                {
                    if (!allowUnknown)
                        RefuseUnknownProperties(root, m);
                    return (m, arguments);
                }
            }
            var one = calls.FirstOrDefault(m => m.ParameterNames.Length == 1);
            if (one is not null)
                return (one, [root.Clone()]);
            var target = calls.OrderByDescending(m => m.ParameterNames.Length).First();
            var missing = target.ParameterNames.FirstOrDefault(n => !TryGetProperty(root, n, out _));
            throw new RequestBindingException(missing is null
                ? $"the call takes {Describe(target)}."
                : $"the JSON object has no property '{missing}' (the call takes {Describe(target)}).");
        }

        var scalar = calls.FirstOrDefault(m => m.ParameterNames.Length == 1);
        return scalar is not null
            ? (scalar, [root.Clone()])
            : throw new RequestBindingException($"a single JSON value was sent, but the call takes {Describe(calls[0])}; send a JSON array of the arguments or a JSON object with one property per parameter.");
    }

    private static bool IsWrapper(JsonElement root, DeploymentMethod method)
    {
        var name = method.ParameterNames[0];
        return CountProperties(root) == 1 && TryGetProperty(root, name, out _) && !HasJsonProperty(method.ParameterTypes[0], name);
    }

    /// <summary>Whether <paramref name="type"/> reads as a JSON object with a property called <paramref name="name"/> (any case).</summary>
    private static bool HasJsonProperty(Type type, string name)
    {
        JsonTypeInfo info;
        try
        {
            info = InvokerHelpers.StrictJson.GetTypeInfo(Nullable.GetUnderlyingType(type) ?? type);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return false; // not serializable as JSON: the invoker reports it
        }
        if (info.Kind != JsonTypeInfoKind.Object)
            return false;
        foreach (var property in info.Properties)
        {
            if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    /// <summary>A JSON object of arguments by name may hold only the method's parameter names (unless the deployment allows unknown properties).</summary>
    private static void RefuseUnknownProperties(JsonElement root, DeploymentMethod method)
    {
        foreach (var property in root.EnumerateObject())
        {
            var known = false;
            foreach (var name in method.ParameterNames)
                known |= string.Equals(name, property.Name, StringComparison.OrdinalIgnoreCase);
            if (!known)
                throw new RequestBindingException($"the JSON object has a property '{property.Name}' that is not a parameter of the call (it takes {Describe(method)}); " +
                                     "remove it, or set AllowUnknownJsonProperties on the deployment to ignore unknown properties.");
        }
    }

    private static int CountProperties(JsonElement obj)
    {
        var n = 0;
        foreach (var _ in obj.EnumerateObject())
            n++;
        return n;
    }

    private static bool TryGetProperty(JsonElement obj, string name, out JsonElement value)
    {
        if (obj.TryGetProperty(name, out value))
            return true;
        foreach (var p in obj.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                value = p.Value;
                return true;
            }
        }
        value = default;
        return false;
    }

    private static bool IsSequence(Type type) =>
        type != typeof(string) && (type.IsArray || type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>)));

    private static string Describe(DeploymentMethod method) =>
        method.ParameterNames.Length == 0
            ? "no arguments"
            : $"{method.ParameterNames.Length} argument(s): " + string.Join(", ", method.ParameterNames.Select((n, i) => $"{n} ({method.ParameterTypes[i].Name})"));
}
