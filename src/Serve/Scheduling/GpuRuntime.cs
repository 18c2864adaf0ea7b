namespace Serve;

/// <summary>
/// A GPU runtime: discovers the host's GPUs and prepares each GPU replica's device state (stream, memory budget).
/// Serve core schedules GPUs without knowing CUDA; Serve.Cuda implements this interface (<c>AddCuda()</c>).
/// </summary>
public interface IGpuRuntime
{
    /// <summary>The GPUs this runtime can use; empty (never an exception) when there is no driver or device.</summary>
    IReadOnlyList<GpuDevice> DiscoverDevices();

    /// <summary>
    /// Prepares the device state of one replica placed on <paramref name="assignment"/>'s devices (called before its
    /// constructor, off the controller loop). The result is disposed when the replica stops, after the user object.
    /// </summary>
    ReplicaGpu Open(GpuAssignment assignment);
}

/// <summary>Where the scheduler placed one replica's GPUs.</summary>
/// <param name="ApplicationName">The replica's application.</param>
/// <param name="DeploymentName">The replica's deployment.</param>
/// <param name="ReplicaId">The replica.</param>
/// <param name="Devices">Its devices: one for a fraction up to 1, <c>n</c> whole devices for <c>NumGpus = n</c>.</param>
/// <param name="Fraction">The share of each device it holds (1 for whole devices).</param>
public sealed record GpuAssignment(string ApplicationName, string DeploymentName, string ReplicaId, IReadOnlyList<GpuDevice> Devices, double Fraction)
{
    /// <summary>The memory budget on each device: <see cref="Fraction"/> × the device's memory.</summary>
    public long MemoryBudgetBytes => (long)(Fraction * Devices[0].MemoryBytes);
}

/// <summary>
/// A replica's GPU share (<see cref="ReplicaContext.Gpu"/>): its device, fraction and memory budget. On a logical
/// GPU (no runtime) that is all; a runtime such as Serve.Cuda derives from this class to add the replica's own
/// stream and a budgeted allocator.
/// </summary>
public class ReplicaGpu : IDisposable
{
    /// <summary>Creates the GPU share for <paramref name="assignment"/>.</summary>
    public ReplicaGpu(GpuAssignment assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        Assignment = assignment;
    }

    /// <summary>The placement this share was made for.</summary>
    public GpuAssignment Assignment { get; }

    /// <summary>The ordinal of the replica's (first) device.</summary>
    public int Ordinal => Assignment.Devices[0].Ordinal;

    /// <summary>All ordinals the replica holds (one unless <see cref="DeploymentOptions.NumGpus"/> is 2 or more).</summary>
    public IReadOnlyList<int> Ordinals => Assignment.Devices.Select(d => d.Ordinal).ToArray();

    /// <summary>The device's name.</summary>
    public string DeviceName => Assignment.Devices[0].Name;

    /// <summary>The share of the device the replica holds, e.g. 0.5.</summary>
    public double Fraction => Assignment.Fraction;

    /// <summary>The replica's memory budget on its device in bytes: <see cref="Fraction"/> × device memory.</summary>
    public long MemoryBudgetBytes => Assignment.MemoryBudgetBytes;

    /// <summary>True when backed by a real device runtime; false for a logical GPU.</summary>
    public virtual bool IsPhysical => false;

    /// <summary>Releases device state (streams, allocations). Called by the host when the replica stops.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases device state; override in a runtime.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"gpu{Ordinal} × {Fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)} ({DeviceName}, budget {MemoryBudgetBytes} bytes)";
}
