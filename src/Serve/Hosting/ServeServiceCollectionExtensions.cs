using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Serve;

/// <summary>Registers Serve in a Generic Host.</summary>
public static class ServeServiceCollectionExtensions
{
    /// <summary>
    /// Adds a Serve host as a singleton (<see cref="ServeHost"/> and <see cref="IServeClient"/>) and a hosted service
    /// that deploys the applications added with <see cref="IServeBuilder.AddApplication{THandle}"/> at start and drains
    /// everything at stop. <see cref="FromServicesAttribute"/> parameters resolve from the application's services.
    /// </summary>
    public static IServeBuilder AddServe(this IServiceCollection services, Action<ServeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = new ServeBuilder(services);
        services.TryAddSingleton(builder.Applications);
        services.TryAddSingleton(sp =>
        {
            var options = new ServeOptions();
            configure?.Invoke(options);
            return new ServeHost(options, sp, sp.GetService<ILoggerFactory>());
        });
        services.TryAddSingleton<IServeClient>(sp => sp.GetRequiredService<ServeHost>());
        services.AddHostedService<ServeHostedService>();
        return builder;
    }

    private sealed class ServeBuilder(IServiceCollection services) : IServeBuilder
    {
        public IServiceCollection Services { get; } = services;
        public ServeApplications Applications { get; } = FindOrCreate(services);

        public IServeBuilder AddApplication<THandle>(Application<THandle> application, RunOptions? options = null) where THandle : DeploymentHandle
        {
            ArgumentNullException.ThrowIfNull(application);
            Applications.Add((client, ct) => client.RunAsync(application, options, ct));
            return this;
        }

        private static ServeApplications FindOrCreate(IServiceCollection services) =>
            services.FirstOrDefault(d => d.ServiceType == typeof(ServeApplications))?.ImplementationInstance as ServeApplications ?? new ServeApplications();
    }
}

/// <summary>Adds applications to the Serve host registered by <c>AddServe</c>.</summary>
public interface IServeBuilder
{
    /// <summary>The service collection.</summary>
    IServiceCollection Services { get; }

    /// <summary>Deploys <paramref name="application"/> when the host starts (in the order added).</summary>
    IServeBuilder AddApplication<THandle>(Application<THandle> application, RunOptions? options = null) where THandle : DeploymentHandle;
}

/// <summary>The applications to deploy at start, in order.</summary>
internal sealed class ServeApplications : List<Func<ServeHost, CancellationToken, Task>>;

/// <summary>A thin <see cref="IHostedService"/>: deploys and starts the HTTP ingress at start, drains at stop; the host does the work.</summary>
internal sealed class ServeHostedService(ServeHost host, ServeApplications applications) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var run in applications)
            await run(host, cancellationToken).ConfigureAwait(false);
        await host.StartHttpAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => host.ShutdownAsync(cancellationToken);
}
