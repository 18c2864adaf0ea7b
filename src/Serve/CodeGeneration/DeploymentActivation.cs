using System.ComponentModel;
using Microsoft.Extensions.DependencyInjection;

namespace Serve.CodeGeneration;

/// <summary>
/// Everything a generated factory needs to construct one replica instance: the bound arguments (with bound
/// deployments already turned into handles), the <see cref="ReplicaContext"/> and the host's services.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DeploymentActivation
{
    private readonly object?[] _arguments;

    internal DeploymentActivation(string deploymentName, int constructorIndex, object?[] arguments, ReplicaContext context, IServiceProvider services)
    {
        DeploymentName = deploymentName;
        ConstructorIndex = constructorIndex;
        _arguments = arguments;
        Context = context;
        Services = services;
    }

    /// <summary>The deployment being constructed.</summary>
    public string DeploymentName { get; }

    /// <summary>Which public constructor (declaration order) to call.</summary>
    public int ConstructorIndex { get; }

    /// <summary>The replica's context, for <see cref="ReplicaContext"/> parameters.</summary>
    public ReplicaContext Context { get; }

    /// <summary>The host's services, for <see cref="FromServicesAttribute"/> parameters.</summary>
    public IServiceProvider Services { get; }

    /// <summary>The bound argument at <paramref name="index"/>, converted to <typeparamref name="T"/>.</summary>
    /// <exception cref="ArgumentException">The bound value is not a <typeparamref name="T"/>.</exception>
    public T GetArgument<T>(int index, string parameterName)
    {
        if ((uint)index >= (uint)_arguments.Length)
            throw new ArgumentException($"Deployment '{DeploymentName}': constructor parameter '{parameterName}' has no bound argument (Bind received {_arguments.Length}).");
        var value = _arguments[index];
        if (value is T t)
            return t;
        if (value is null && default(T) is null)
            return default!;
        throw new ArgumentException(
            $"Deployment '{DeploymentName}': constructor parameter '{parameterName}' expects {typeof(T)}, but Bind received " +
            (value is null ? "null" : value.GetType().ToString()) + ". Pass a value of the parameter's type to Bind.");
    }

    /// <summary>Resolves a <see cref="FromServicesAttribute"/> parameter from the host's services.</summary>
    /// <exception cref="InvalidOperationException">No such service is registered.</exception>
    public T GetService<T>(string parameterName) where T : notnull
    {
        var service = Services.GetService(typeof(T));
        if (service is T t)
            return t;
        throw new InvalidOperationException(
            $"Deployment '{DeploymentName}': constructor parameter '{parameterName}' is [FromServices] {typeof(T)}, but no such service is registered. " +
            "Register it in the IServiceCollection that calls AddServe, or pass the services to ServeHost.StartAsync.");
    }

    /// <summary>The exception a generated factory throws for a constructor index it does not know.</summary>
    public Exception UnknownConstructor() =>
        new InvalidOperationException($"Deployment '{DeploymentName}' has no public constructor #{ConstructorIndex}; rebuild the project so the generated code matches the class.");
}
