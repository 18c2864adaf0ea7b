using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serve.Config;

// Importing applications: an application entry, its assembly and builder, the builder's args, and the
// deployments: overrides applied to a new graph.
public static partial class ServeConfigLoader
{
    private static ApplicationConfig? ReadApplication(JsonNode? node, string at, string baseDirectory, List<ServeConfigError> errors)
    {
        if (node is not JsonObject obj)
        {
            errors.Add(new(at, $"expected a mapping with keys {List(AppKeys)}, got {Show(node)}"));
            return null;
        }
        var before = errors.Count;
        CheckKeys(obj, at, AppKeys, errors);
        var name = RunOptions.DefaultName;
        if (obj.TryGetPropertyValue("name", out var n) && ReadString(n, $"{at}.name", errors) is { } givenName)
        {
            if (string.IsNullOrWhiteSpace(givenName))
                errors.Add(new($"{at}.name", "must not be empty"));
            name = givenName;
        }
        string? prefix = null;
        if (obj.TryGetPropertyValue("route_prefix", out var r) && ReadString(r, $"{at}.route_prefix", errors) is { } givenPrefix)
        {
            if (Routing.RoutePrefixes.Problem(givenPrefix) is { } problem)
                errors.Add(new($"{at}.route_prefix", $"application \"{name}\": \"{givenPrefix}\" is not a route prefix: it {problem}"));
            prefix = Routing.RoutePrefixes.Normalize(givenPrefix);
        }
        obj.TryGetPropertyValue("args", out var args);
        if (args is not null and not JsonObject and not JsonArray)
            errors.Add(new($"{at}.args", $"expected a mapping of builder parameter names to values (or a list of values), got {Show(args)}"));

        string? import = null;
        if (!obj.TryGetPropertyValue("import", out var i) || i is null)
            errors.Add(new($"{at}.import", "missing; set it to 'path/to/Assembly.dll:Namespace.Type.Method'"));
        else
            import = ReadString(i, $"{at}.import", errors);

        Application? application = null;
        if (import is not null && errors.Count == before)
            application = Import(import, args, $"{at}.import", $"{at}.args", baseDirectory, errors);

        if (obj.TryGetPropertyValue("deployments", out var d) && d is not null)
        {
            if (d is not JsonArray list)
                errors.Add(new($"{at}.deployments", $"expected a list of deployment overrides, got {Show(d)}"));
            else if (application is not null)
                application = ApplyOverrides(application, list, $"{at}.deployments", baseDirectory, errors);
        }
        if (prefix is null && application is not null && application.OptionsNoCopy.RoutePrefix is { } own)
        {
            // The ingress's own RoutePrefix (attribute or override) was validated with its options.
            if (Routing.RoutePrefixes.Problem(own) is { } problem)
                errors.Add(new(at, $"application \"{name}\": the RoutePrefix of its ingress deployment '{application.DeploymentName}', \"{own}\", is not a route prefix: it {problem}; set route_prefix"));
        }
        return errors.Count == before && application is not null
            ? new ApplicationConfig(name, prefix, import!, args, application)
            : null;
    }

    private static Application? Import(string import, JsonNode? args, string at, string argsAt, string baseDirectory, List<ServeConfigError> errors)
    {
        var colon = import.LastIndexOf(':');
        if (colon <= 0 || colon == import.Length - 1 || import.IndexOf('.', colon) < 0 || import.Length - colon < 4 || import[(colon + 1)..].Contains('\\') || import[(colon + 1)..].Contains('/'))
        {
            errors.Add(new(at, $"expected 'path/to/Assembly.dll:Namespace.Type.Method', got \"{import}\""));
            return null;
        }
        var assemblyPath = Path.GetFullPath(Path.Combine(baseDirectory, import[..colon]));
        var member = import[(colon + 1)..];
        var dot = member.LastIndexOf('.');
        if (dot <= 0 || dot == member.Length - 1)
        {
            errors.Add(new(at, $"expected 'Namespace.Type.Method' after the ':', got \"{member}\""));
            return null;
        }
        var typeName = member[..dot];
        var methodName = member[(dot + 1)..];
        if (!File.Exists(assemblyPath))
        {
            errors.Add(new(at, $"assembly not found: {assemblyPath}"));
            return null;
        }
        Assembly assembly;
        try
        {
            assembly = Assembly.LoadFrom(assemblyPath);
            RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException or IOException or TypeInitializationException)
        {
            errors.Add(new(at, $"cannot load assembly {assemblyPath}: {e.Message}"));
            return null;
        }
        var type = assembly.GetType(typeName, throwOnError: false);
        if (type is null)
        {
            errors.Add(new(at, $"type '{typeName}' not found in {assemblyPath}; use the full name, Namespace.Type (Outer+Inner for a nested type)"));
            return null;
        }
        var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.Name == methodName && typeof(Application).IsAssignableFrom(m.ReturnType) && !m.ContainsGenericParameters)
            .ToArray();
        if (methods.Length == 0)
        {
            var candidates = type.GetMethods(BindingFlags.Public | BindingFlags.Static)
                .Where(m => typeof(Application).IsAssignableFrom(m.ReturnType)).Select(m => m.Name).Distinct().Order().ToArray();
            errors.Add(new(at, $"no public static method '{methodName}' returning Serve.Application in {type.FullName} ({assemblyPath}); " +
                               (candidates.Length > 0 ? $"builders there: {string.Join(", ", candidates)}" : "the type has no public static method returning an Application")));
            return null;
        }
        if (methods.Length > 1)
        {
            errors.Add(new(at, $"{type.FullName}.{methodName} has {methods.Length} overloads; give the builder a unique name"));
            return null;
        }
        var method = methods[0];
        if (BindArguments(method, args, argsAt, errors) is not { } arguments)
            return null;
        try
        {
            return (Application?)method.Invoke(null, arguments)
                   ?? throw new InvalidOperationException($"{type.FullName}.{methodName} returned null");
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidOperationException or ArgumentException)
        {
            var inner = e is TargetInvocationException { InnerException: { } x } ? x : e;
            errors.Add(new(at, $"{type.FullName}.{methodName} threw {inner.GetType().Name}: {inner.Message}"));
            return null;
        }
    }

    private static object?[]? BindArguments(MethodInfo method, JsonNode? args, string at, List<ServeConfigError> errors)
    {
        var parameters = method.GetParameters();
        var values = new object?[parameters.Length];
        var signature = $"{method.DeclaringType?.Name}.{method.Name}({string.Join(", ", parameters.Select(p => $"{p.ParameterType.Name} {p.Name}"))})";
        var before = errors.Count;
        if (args is JsonArray list)
        {
            if (list.Count > parameters.Length)
                errors.Add(new(at, $"{list.Count} values given but {signature} takes {parameters.Length}"));
            for (var i = 0; i < parameters.Length; i++)
                values[i] = i < list.Count ? Convert(list[i], parameters[i], $"{at}[{i}]", errors) : Missing(parameters[i], at, signature, errors);
            return errors.Count == before ? values : null;
        }
        var obj = args as JsonObject ?? [];
        foreach (var (key, _) in obj)
            if (!parameters.Any(p => string.Equals(p.Name, key, StringComparison.OrdinalIgnoreCase)))
                errors.Add(new($"{at}.{key}", $"unknown argument; {signature} takes {(parameters.Length == 0 ? "no arguments" : string.Join(", ", parameters.Select(p => p.Name)))}"));
        for (var i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            var found = obj.FirstOrDefault(kv => string.Equals(kv.Key, p.Name, StringComparison.Ordinal));
            if (found.Key is null)
                found = obj.FirstOrDefault(kv => string.Equals(kv.Key, p.Name, StringComparison.OrdinalIgnoreCase));
            values[i] = found.Key is null ? Missing(p, at, signature, errors) : Convert(found.Value, p, $"{at}.{found.Key}", errors);
        }
        return errors.Count == before ? values : null;
    }

    private static object? Missing(ParameterInfo p, string at, string signature, List<ServeConfigError> errors)
    {
        if (p.HasDefaultValue)
            return p.DefaultValue;
        errors.Add(new($"{at}.{p.Name}", $"missing; {signature} requires it"));
        return null;
    }

    private static object? Convert(JsonNode? value, ParameterInfo p, string at, List<ServeConfigError> errors)
    {
        try
        {
            return value is null ? (p.ParameterType.IsValueType && Nullable.GetUnderlyingType(p.ParameterType) is null ? throw new JsonException("null is not allowed") : null)
                : value.Deserialize(p.ParameterType, ArgsJson);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or FormatException)
        {
            errors.Add(new(at, $"cannot convert {Show(value)} to {p.ParameterType.Name} (parameter '{p.Name}'): {e.Message}"));
            return null;
        }
    }

    private static Application? ApplyOverrides(Application application, JsonArray list, string at, string baseDirectory, List<ServeConfigError> errors)
    {
        var nodes = application.Nodes().ToList();
        var byName = nodes.GroupBy(n => n.DeploymentName, StringComparer.Ordinal).ToDictionary(g => g.Key, StringComparer.Ordinal);
        var known = string.Join(", ", byName.Keys.Order(StringComparer.Ordinal));
        var overrides = new Dictionary<string, (JsonObject Node, string At)>(StringComparer.Ordinal);
        var before = errors.Count;
        for (var i = 0; i < list.Count; i++)
        {
            var dat = $"{at}[{i}]";
            if (list[i] is not JsonObject obj)
            {
                errors.Add(new(dat, $"expected a mapping with keys {List(DeploymentKeys)}, got {Show(list[i])}"));
                continue;
            }
            CheckKeys(obj, dat, DeploymentKeys, errors);
            if (!obj.TryGetPropertyValue("name", out var n) || n is null)
            {
                errors.Add(new($"{dat}.name", $"missing; name one of the application's deployments: {known}"));
                continue;
            }
            if (ReadString(n, $"{dat}.name", errors) is not { } name)
                continue;
            if (!byName.ContainsKey(name))
                errors.Add(new($"{dat}.name", $"no deployment \"{name}\" in this application; its deployments are: {known}"));
            else if (!overrides.TryAdd(name, (obj, dat)))
                errors.Add(new($"{dat}.name", $"deployment \"{name}\" is listed twice; merge its overrides into one entry"));
        }
        var options = new Dictionary<Application, DeploymentOptions>(ReferenceEqualityComparer.Instance);
        foreach (var (name, (obj, dat)) in overrides)
            foreach (var node in byName[name])
                if (Override(node, obj, dat, baseDirectory, errors) is { } o)
                    options[node] = o;
        if (errors.Count > before)
            return null;
        return application.RewriteOptions(node => options.TryGetValue(node, out var o) ? o : node.GetOptions());
    }
}
