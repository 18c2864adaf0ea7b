using System.Globalization;

namespace Serve;

/// <summary>
/// The host's resource pool (<see cref="ServeOptions.Resources"/>): what replicas reserve with
/// <see cref="DeploymentOptions.NumCpus"/>, <see cref="DeploymentOptions.NumGpus"/> and
/// <see cref="DeploymentOptions.Resources"/>. A replica that does not fit stays pending until resources free up.
/// </summary>
public sealed class ResourceOptions
{
    /// <summary>The environment variable that overrides the default of <see cref="Cpus"/> (e.g. <c>SERVE_NUM_CPUS=16</c>).</summary>
    public const string NumCpusVariable = "SERVE_NUM_CPUS";

    /// <summary>
    /// CPUs replicas may reserve in total. Default: the <c>SERVE_NUM_CPUS</c> environment variable when it holds a
    /// number, else <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public double Cpus { get; set; } = DefaultCpus(Environment.GetEnvironmentVariable(NumCpusVariable));

    internal static double DefaultCpus(string? variable) =>
        double.TryParse(variable, NumberStyles.Float, CultureInfo.InvariantCulture, out var cpus) && cpus >= 0 && !double.IsInfinity(cpus)
            ? cpus
            : Environment.ProcessorCount;

    /// <summary>
    /// The GPUs replicas may reserve. <c>null</c> (the default) means "discover them": through
    /// <see cref="GpuRuntime"/> (e.g. <c>AddCuda()</c> from Serve.Cuda), else none. Set a list (for instance with
    /// <see cref="UseLogicalGpus"/>) to schedule against logical GPUs on a machine without one (leave
    /// <see cref="GpuRuntime"/> unset then), or, with a runtime, to use only some of the real devices (their real
    /// ordinals).
    /// </summary>
    public IList<GpuDevice>? Gpus { get; set; }

    /// <summary>Custom resources by name (Ray's <c>resources={"accelerator": 2}</c>), reserved by <see cref="DeploymentOptions.Resources"/>.</summary>
    public IDictionary<string, double> Custom { get; } = new Dictionary<string, double>(StringComparer.Ordinal);

    /// <summary>
    /// The GPU runtime that discovers devices and gives each GPU replica its stream and memory budget, or <c>null</c>
    /// for none (GPU replicas then get a logical <see cref="ReplicaGpu"/>). Serve.Cuda's <c>AddCuda()</c> sets it.
    /// </summary>
    public IGpuRuntime? GpuRuntime { get; set; }

    /// <summary>Replaces <see cref="Gpus"/> with <paramref name="count"/> logical GPUs (<c>gpu0</c>…) of <paramref name="memoryBytes"/> each.</summary>
    /// <returns>These options, for chaining.</returns>
    public ResourceOptions UseLogicalGpus(int count, long memoryBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(memoryBytes);
        var gpus = new List<GpuDevice>(count);
        for (var i = 0; i < count; i++)
            gpus.Add(new GpuDevice(i, $"logical GPU {i}", memoryBytes));
        Gpus = gpus;
        return this;
    }

    internal void Validate()
    {
        if (!(Cpus >= 0) || double.IsInfinity(Cpus))
            throw new ArgumentOutOfRangeException(nameof(Cpus), Cpus,
                $"ServeOptions.Resources.Cpus = {Cpus.ToString(CultureInfo.InvariantCulture)} is out of range; use a finite number of 0 or more (the default is the processor count).");
        if (Gpus is { } gpus)
        {
            var seen = new HashSet<int>();
            foreach (var gpu in gpus)
            {
                if (gpu is null)
                    throw new ArgumentException("ServeOptions.Resources.Gpus contains null; list GpuDevice values or use UseLogicalGpus(count, memoryBytes).", nameof(Gpus));
                if (gpu.Ordinal < 0 || !seen.Add(gpu.Ordinal))
                    throw new ArgumentException($"ServeOptions.Resources.Gpus: ordinal {gpu.Ordinal} is negative or listed twice; give each GPU a distinct ordinal of 0 or more.", nameof(Gpus));
                if (gpu.MemoryBytes <= 0)
                    throw new ArgumentOutOfRangeException(nameof(Gpus), gpu.MemoryBytes, $"ServeOptions.Resources.Gpus: gpu{gpu.Ordinal} has MemoryBytes = {gpu.MemoryBytes}; give it its memory size in bytes.");
            }
        }
        foreach (var (name, amount) in Custom)
        {
            if (string.IsNullOrWhiteSpace(name))
                throw new ArgumentException("ServeOptions.Resources.Custom has an empty resource name; name every custom resource.", nameof(Custom));
            if (!(amount >= 0) || double.IsInfinity(amount))
                throw new ArgumentOutOfRangeException(nameof(Custom), amount,
                    $"ServeOptions.Resources.Custom[\"{name}\"] = {amount.ToString(CultureInfo.InvariantCulture)} is out of range; use a finite amount of 0 or more.");
        }
    }
}

/// <summary>One GPU of the host's pool.</summary>
/// <param name="Ordinal">The device ordinal (CUDA's device index); shown as <c>gpu{Ordinal}</c> in status messages.</param>
/// <param name="Name">The device name, e.g. <c>NVIDIA H100 80GB HBM3</c>.</param>
/// <param name="MemoryBytes">Its total memory in bytes; a replica's memory budget is its fraction of this.</param>
public sealed record GpuDevice(int Ordinal, string Name, long MemoryBytes)
{
    /// <summary>The device UUID when the runtime knows it, else <c>null</c>.</summary>
    public string? Uuid { get; init; }
}
