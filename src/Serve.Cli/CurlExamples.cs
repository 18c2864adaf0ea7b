using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serve.CodeGeneration;

namespace Serve.Cli;

/// <summary>
/// A curl line per application that a user can paste to try it (like the Quickstart's): a GET for a call method without
/// parameters (or one taking the request itself), a POST with a sample JSON body built from the call method's parameter
/// types otherwise, and one line per <c>[HttpGet]</c>-style endpoint, its route values left as <c>{name}</c> to fill in.
/// </summary>
internal static class CurlExamples
{
    private const int MaxEndpoints = 3;

    public static IEnumerable<string> For(DeploymentDefinition definition, string url)
    {
        if (definition.HttpEndpoints.Count > 0)
        {
            var baseUrl = url.TrimEnd('/');
            foreach (var endpoint in definition.HttpEndpoints.Take(MaxEndpoints))
            {
                var target = $"{baseUrl}/{endpoint.Template.TrimStart('/')}";
                var bodyParameter = endpoint.Parameters.FirstOrDefault(p => p.Source == HttpParameterSource.Body);
                yield return endpoint.Method.Equals("GET", StringComparison.OrdinalIgnoreCase)
                    ? $"curl -g '{target}'"
                    : $"curl -g -X {endpoint.Method.ToUpperInvariant()} '{target}'" + (bodyParameter is null ? "" : Data(BodySample(definition, endpoint, bodyParameter.Name)));
            }
            yield break;
        }
        var call = definition.Methods.Where(m => m.IsCall).OrderBy(m => m.ParameterTypes.Length).FirstOrDefault();
        if (call is null)
            yield break;
        var parameters = call.ParameterTypes.Select((t, i) => (Type: t, Name: call.ParameterNames[i]))
            .Where(p => !IsInjected(p.Type)).ToArray();
        if (parameters.Length == 0 || call.ParameterTypes.Any(IsRequest))
        {
            yield return $"curl {url}";
            yield break;
        }
        JsonNode? body;
        if (parameters.Length == 1)
        {
            body = Sample(parameters[0].Type);
        }
        else
        {
            var named = new JsonObject();
            foreach (var (type, name) in parameters)
                named[name] = Sample(type);
            body = named;
        }
        yield return $"curl -X POST {url}" + Data(body);
    }

    private static string Data(JsonNode? body) =>
        $" -H 'content-type: application/json' -d '{(body?.ToJsonString() ?? "null").Replace("'", "'\\''", StringComparison.Ordinal)}'";

    private static JsonNode? BodySample(DeploymentDefinition definition, HttpEndpoint endpoint, string parameter)
    {
        var method = definition.Methods.FirstOrDefault(m => m.MethodId == endpoint.MethodId);
        var index = method is null ? -1 : Array.IndexOf(method.ParameterNames, parameter);
        return index < 0 ? new JsonObject() : Sample(method!.ParameterTypes[index]);
    }

    private static bool IsRequest(Type type) => type.FullName is "Microsoft.AspNetCore.Http.HttpRequest" or "Microsoft.AspNetCore.Http.HttpContext";

    private static bool IsInjected(Type type) => type == typeof(CancellationToken);

    private static JsonNode? Sample(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
            return "hello";
        if (type == typeof(bool))
            return true;
        if (type.IsPrimitive || type == typeof(decimal))
            return 1;
        if (type.IsEnum)
            return Enum.GetNames(type).FirstOrDefault();
        if (type.IsArray || (type != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(type)))
            return new JsonArray();
        try
        {
            // A record or class: its properties with default values show the shape the body takes.
            var instance = type.IsValueType ? Activator.CreateInstance(type) : RuntimeHelpers.GetUninitializedObject(type);
            return JsonSerializer.SerializeToNode(instance, type, JsonSerializerOptions.Web);
        }
        catch (Exception e) when (e is NotSupportedException or ArgumentException or InvalidOperationException or MemberAccessException or JsonException)
        {
            return new JsonObject();
        }
    }
}
