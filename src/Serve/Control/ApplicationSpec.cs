using System.Collections;

namespace Serve.Control;

/// <summary>
/// The desired state of one application as plain data: what the controller reconciles towards. Bound deployments
/// referenced as constructor arguments appear as <see cref="DeploymentRef"/>, never as live objects.
/// </summary>
internal sealed record ApplicationSpec(string Name, string RoutePrefix, string IngressName, IReadOnlyList<DeploymentSpec> Deployments)
{
    /// <summary>Flattens a bound graph: each deployment once, by name; two different bindings of one name are an error.</summary>
    public static ApplicationSpec FromGraph(Application root, RunOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Name))
            throw new ArgumentException("RunOptions.Name must not be empty; use a name such as \"default\".", nameof(options));
        var prefix = options.RoutePrefix ?? root.OptionsNoCopy.RoutePrefix ?? "/";
        if (Routing.RoutePrefixes.Problem(prefix) is { } problem)
        {
            var source = options.RoutePrefix is not null ? "RunOptions.RoutePrefix" : $"the RoutePrefix of its ingress deployment '{root.DeploymentName}'";
            throw new ArgumentOutOfRangeException(nameof(options), prefix, $"Application '{options.Name}': {source} = \"{prefix}\" is not a route prefix: it {problem}.");
        }
        prefix = Routing.RoutePrefixes.Normalize(prefix);
        var byName = new Dictionary<string, (Application App, DeploymentSpec Spec)>(StringComparer.Ordinal);
        var ordered = new List<DeploymentSpec>();
        Visit(root, options.Name, byName, ordered, new HashSet<Application>(ReferenceEqualityComparer.Instance));
        return new ApplicationSpec(options.Name, prefix, root.DeploymentName, ordered);
    }

    private static string Visit(Application app, string appName, Dictionary<string, (Application, DeploymentSpec)> byName, List<DeploymentSpec> ordered, HashSet<Application> path)
    {
        var name = app.DeploymentName;
        if (byName.TryGetValue(name, out var existing) && ReferenceEquals(existing.Item1, app))
            return name;
        if (!path.Add(app))
            throw new ArgumentException($"Application '{appName}': deployment '{name}' depends on itself.");
        var arguments = new object?[app.Arguments.Count];
        for (var i = 0; i < arguments.Length; i++)
            arguments[i] = app.Arguments[i] is Application child ? new DeploymentRef(Visit(child, appName, byName, ordered, path)) : app.Arguments[i];
        path.Remove(app);
        var options = app.GetOptions();
        options.Validate(name);
        var spec = new DeploymentSpec(name, app.Definition, options, app.ConstructorIndex, arguments);
        if (byName.TryGetValue(name, out existing))
        {
            if (!existing.Item2.SameAs(spec))
                throw new ArgumentException(
                    $"Application '{appName}' binds two different deployments named '{name}' (different class, arguments or options). " +
                    $"Bind it once and pass the same application object to both places, or give one a distinct name with .WithOptions(o => o.Name = \"{name}2\").");
            return name;
        }
        byName[name] = (app, spec);
        ordered.Add(spec);
        return name;
    }
}

/// <summary>A reference from a bound argument to another deployment of the same application.</summary>
internal sealed record DeploymentRef(string Name);

/// <summary>The desired state of one deployment.</summary>
internal sealed record DeploymentSpec(string Name, DeploymentDefinition Definition, DeploymentOptions Options, int ConstructorIndex, object?[] Arguments)
{
    /// <summary>
    /// The code version: the explicit <see cref="DeploymentOptions.Version"/>, else the MVID of the assembly that will run
    /// (the one in the <see cref="RuntimeEnv.Directory"/> for a directory environment), so a rebuilt assembly counts as new code.
    /// </summary>
    public string CodeVersion { get; } = Options.Version ?? Isolation.CodeIdentity.Of(Name, Definition, Options.RuntimeEnv);

    public string UserConfigJson { get; } = Options.UserConfigJson();

    /// <summary>True when replicas started for <paramref name="other"/> can serve this spec as they are (maybe after a reconfigure).</summary>
    public bool SameCode(DeploymentSpec other) =>
        ReferenceEquals(Definition, other.Definition)
        && CodeVersion == other.CodeVersion
        && ConstructorIndex == other.ConstructorIndex
        && SameArguments(Arguments, other.Arguments)
        && Options.SameReplicaShape(other.Options)
        && Options.RuntimeEnv.Equals(other.Options.RuntimeEnv);

    public bool SameAs(DeploymentSpec other) =>
        SameCode(other)
        && UserConfigJson == other.UserConfigJson
        && Options.NumReplicas == other.Options.NumReplicas
        && Options.MaxOngoingRequests == other.Options.MaxOngoingRequests
        && Options.MaxQueuedRequests == other.Options.MaxQueuedRequests
        && Options.RoutePrefix == other.Options.RoutePrefix
        && Options.GracefulShutdownTimeout == other.Options.GracefulShutdownTimeout
        && Options.HealthCheckPeriod == other.Options.HealthCheckPeriod
        && Options.HealthCheckTimeout == other.Options.HealthCheckTimeout
        && Options.AllowUnknownJsonProperties == other.Options.AllowUnknownJsonProperties
        && Options.RetryOnNodeFailure == other.Options.RetryOnNodeFailure
        && Options.MaxReplicasPerNode == other.Options.MaxReplicasPerNode
        && Options.NodeSelector.Count == other.Options.NodeSelector.Count
        && Options.NodeSelector.All(l => other.Options.NodeSelector.TryGetValue(l.Key, out var v) && v == l.Value)
        && (Options.Autoscaling is null ? other.Options.Autoscaling is null : Options.Autoscaling.SameAs(other.Options.Autoscaling));

    private static bool SameArguments(object?[] a, object?[] b)
    {
        if (a.Length != b.Length)
            return false;
        for (var i = 0; i < a.Length; i++)
        {
            if (!StructuralComparisons.StructuralEqualityComparer.Equals(a[i], b[i]))
                return false;
        }
        return true;
    }
}
