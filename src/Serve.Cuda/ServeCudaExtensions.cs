using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Serve.Cuda;

/// <summary>Turns on CUDA for a Serve host.</summary>
public static class ServeCudaExtensions
{
    /// <summary>
    /// Uses CUDA for the host registered by <c>AddServe</c>: its GPU pool is what the driver discovers (none without a
    /// driver, and GPU deployments are then reported unschedulable), and each GPU replica gets a
    /// <see cref="CudaReplicaGpu"/>.
    /// </summary>
    public static IServeBuilder AddCuda(this IServeBuilder builder, CudaGpuRuntime? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddSingleton<IGpuRuntime>(runtime ?? CudaGpuRuntime.Shared);
        return builder;
    }

    /// <summary>The embedded-host form of <see cref="AddCuda"/>: <c>ServeHost.StartAsync(o =&gt; o.UseCuda())</c>.</summary>
    public static ServeOptions UseCuda(this ServeOptions options, CudaGpuRuntime? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Resources.GpuRuntime = runtime ?? CudaGpuRuntime.Shared;
        return options;
    }

    /// <summary>The replica's CUDA share: its context, stream and budgeted allocator.</summary>
    /// <exception cref="InvalidOperationException">The replica has no GPU, or its GPU is logical (no CUDA runtime); the message says which and what to do.</exception>
    public static CudaReplicaGpu Cuda(this ReplicaContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Gpu switch
        {
            CudaReplicaGpu cuda => cuda,
            null => throw new InvalidOperationException(
                $"Deployment '{context.DeploymentName}' (replica {context.ReplicaId}) has no GPU: set NumGpus (e.g. 0.5) in its [Deployment] or WithOptions."),
            var logical => throw new InvalidOperationException(
                $"Replica {context.ReplicaId} of '{context.DeploymentName}' holds {logical}, a logical GPU without CUDA: start the host with AddCuda() / o.UseCuda() " +
                "so that GPU replicas get a CUDA stream and allocator."),
        };
    }
}
