using System.Globalization;
using System.Text;

namespace Serve.Scheduling;

/// <summary>What one replica reserves, in fixed-point units (1/10000 of a CPU, GPU or custom unit, as Ray does).</summary>
internal sealed class ResourceRequest
{
    public const long Scale = 10_000;

    private ResourceRequest(long cpus, long gpus, KeyValuePair<string, long>[] custom)
    {
        Cpus = cpus;
        Gpus = gpus;
        Custom = custom;
    }

    public long Cpus { get; }
    public long Gpus { get; }
    public KeyValuePair<string, long>[] Custom { get; }
    public bool IsEmpty => Cpus == 0 && Gpus == 0 && Custom.Length == 0;

    public static ResourceRequest From(DeploymentOptions options) => From(options.NumCpus, options.NumGpus, options.Resources);

    /// <summary>A request from plain amounts (what a node of a cluster reports for a deployment).</summary>
    public static ResourceRequest From(double cpus, double gpus, IEnumerable<KeyValuePair<string, double>> resources)
    {
        var custom = new List<KeyValuePair<string, long>>();
        foreach (var (name, amount) in resources)
        {
            var units = ToUnits(amount);
            if (units > 0)
                custom.Add(new(name, units));
        }
        custom.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new ResourceRequest(ToUnits(cpus), ToUnits(gpus), [.. custom]);
    }

    public static long ToUnits(double amount) => (long)Math.Round(amount * Scale, MidpointRounding.AwayFromZero);

    public static string Format(long units) =>
        ((double)units / Scale).ToString("0.####", CultureInfo.InvariantCulture);

    public override string ToString()
    {
        var parts = new List<string>();
        if (Cpus > 0) parts.Add($"{Format(Cpus)} CPU");
        if (Gpus > 0) parts.Add($"{Format(Gpus)} GPU");
        foreach (var (name, units) in Custom) parts.Add($"{Format(units)} {name}");
        return parts.Count == 0 ? "nothing" : string.Join(", ", parts);
    }
}

/// <summary>What one replica holds: released exactly once when it stops.</summary>
internal sealed class Reservation(ResourceRequest request, int[] gpuIndexes, long gpuUnitsPerDevice)
{
    public ResourceRequest Request { get; } = request;
    /// <summary>The devices it holds, as positions in <see cref="ResourcePool.Gpus"/> (ordinal order).</summary>
    public int[] GpuIndexes { get; } = gpuIndexes;
    public long GpuUnitsPerDevice { get; } = gpuUnitsPerDevice;
    public bool Released { get; set; }
}

/// <summary>
/// The host's resources and who holds them. Owned by the controller loop (no locks): the loop reserves before it
/// starts a replica and releases when the replica has stopped. Fractional GPUs are packed best-fit onto one device
/// (a replica never spans devices); a request above 1 GPU takes that many whole, free devices.
/// </summary>
internal sealed class ResourcePool
{
    private readonly long _cpuCapacity;
    private long _cpuUsed;
    private readonly GpuDevice[] _gpus;
    private readonly long[] _gpuUsed;
    private readonly Dictionary<string, long> _customCapacity;
    private readonly Dictionary<string, long> _customUsed = new(StringComparer.Ordinal);
    private readonly string _noGpuHint;

    public ResourcePool(double cpus, IEnumerable<GpuDevice> gpus, IEnumerable<KeyValuePair<string, double>> custom, string noGpuHint)
    {
        _cpuCapacity = ResourceRequest.ToUnits(cpus);
        _gpus = [.. gpus.OrderBy(g => g.Ordinal)];
        _gpuUsed = new long[_gpus.Length];
        _customCapacity = custom.ToDictionary(c => c.Key, c => ResourceRequest.ToUnits(c.Value), StringComparer.Ordinal);
        _noGpuHint = noGpuHint;
    }

    private ResourcePool(ResourcePool shape)
    {
        _cpuCapacity = shape._cpuCapacity;
        _gpus = shape._gpus;
        _gpuUsed = new long[_gpus.Length];
        _customCapacity = shape._customCapacity;
        _noGpuHint = shape._noGpuHint;
    }

    public IReadOnlyList<GpuDevice> Gpus => _gpus;
    public double CpuCapacity => (double)_cpuCapacity / ResourceRequest.Scale;
    public double CpuFree => (double)(_cpuCapacity - _cpuUsed) / ResourceRequest.Scale;

    /// <summary>The free share of each GPU, in the order of <see cref="Gpus"/>.</summary>
    public double[] GpuFree() => _gpuUsed.Select(u => (double)(ResourceRequest.Scale - u) / ResourceRequest.Scale).ToArray();

    public double CustomFree(string name) =>
        _customCapacity.TryGetValue(name, out var capacity) ? (double)(capacity - _customUsed.GetValueOrDefault(name)) / ResourceRequest.Scale : 0;

    /// <summary>Reserves <paramref name="request"/>, or says why it does not fit now (<c>Unschedulable: needs …</c>).</summary>
    public bool TryReserve(ResourceRequest request, out Reservation reservation, out string why)
    {
        reservation = null!;
        why = "";
        var gpuIndexes = PlaceGpus(request.Gpus);
        var fits = _cpuCapacity - _cpuUsed >= request.Cpus && gpuIndexes is not null;
        foreach (var (name, units) in request.Custom)
            fits &= _customCapacity.TryGetValue(name, out var capacity) && capacity - _customUsed.GetValueOrDefault(name) >= units;
        if (!fits)
        {
            why = Explain(request);
            return false;
        }
        _cpuUsed += request.Cpus;
        var perDevice = request.Gpus > ResourceRequest.Scale ? ResourceRequest.Scale : request.Gpus;
        foreach (var i in gpuIndexes!)
            _gpuUsed[i] += perDevice;
        foreach (var (name, units) in request.Custom)
            _customUsed[name] = _customUsed.GetValueOrDefault(name) + units;
        reservation = new Reservation(request, gpuIndexes!, perDevice);
        return true;
    }

    public void Release(Reservation reservation)
    {
        if (reservation.Released)
            return;
        reservation.Released = true;
        _cpuUsed -= reservation.Request.Cpus;
        foreach (var i in reservation.GpuIndexes)
            _gpuUsed[i] -= reservation.GpuUnitsPerDevice;
        foreach (var (name, units) in reservation.Request.Custom)
            _customUsed[name] -= units;
    }

    /// <summary>True when <paramref name="request"/> would fit once <paramref name="held"/> is released (used to make room in a rolling update).</summary>
    public bool FitsAfterReleasing(ResourceRequest request, Reservation held)
    {
        if (held.Released)
            return false;
        Release(held);
        held.Released = false;
        var fits = TryReserve(request, out var trial, out _);
        if (fits)
            Release(trial);
        // Re-take what 'held' holds, exactly as it was.
        _cpuUsed += held.Request.Cpus;
        foreach (var i in held.GpuIndexes)
            _gpuUsed[i] += held.GpuUnitsPerDevice;
        foreach (var (name, units) in held.Request.Custom)
            _customUsed[name] = _customUsed.GetValueOrDefault(name) + units;
        return fits;
    }

    /// <summary>
    /// Places <paramref name="replicas"/> (request and count per deployment) on an empty pool of the same size; returns
    /// null when they fit, else the deployment that does not and why. Requests are placed largest GPU share first,
    /// the order best fit packs best in.
    /// </summary>
    public (string Deployment, int Replica, int Of, string Why)? WhyNeverFits(IEnumerable<(string Deployment, ResourceRequest Request, int Count)> replicas)
    {
        var empty = new ResourcePool(this);
        foreach (var (deployment, request, count) in replicas.OrderByDescending(r => r.Request.Gpus).ThenByDescending(r => r.Request.Cpus))
        {
            for (var i = 0; i < count; i++)
            {
                if (!empty.TryReserve(request, out _, out var why))
                    return (deployment, i + 1, count, why);
            }
        }
        return null;
    }

    private int[]? PlaceGpus(long units)
    {
        if (units == 0)
            return [];
        if (units <= ResourceRequest.Scale)
        {
            // Best fit: the device with the least free share that still holds the request, lowest ordinal on ties.
            var best = -1;
            for (var i = 0; i < _gpus.Length; i++)
            {
                var free = ResourceRequest.Scale - _gpuUsed[i];
                if (free >= units && (best < 0 || free < ResourceRequest.Scale - _gpuUsed[best]))
                    best = i;
            }
            return best < 0 ? null : [best];
        }
        var whole = (int)(units / ResourceRequest.Scale);
        var picked = new List<int>(whole);
        for (var i = 0; i < _gpus.Length && picked.Count < whole; i++)
        {
            if (_gpuUsed[i] == 0)
                picked.Add(i);
        }
        return picked.Count == whole ? [.. picked] : null;
    }

    private string Explain(ResourceRequest request)
    {
        var parts = new List<string>();
        var cpuFree = _cpuCapacity - _cpuUsed;
        if (cpuFree < request.Cpus)
            parts.Add($"needs {ResourceRequest.Format(request.Cpus)} CPU, {ResourceRequest.Format(cpuFree)} of {ResourceRequest.Format(_cpuCapacity)} free");
        if (request.Gpus > 0 && PlaceGpus(request.Gpus) is null)
        {
            var text = new StringBuilder();
            if (request.Gpus > ResourceRequest.Scale)
                text.Append($"needs {ResourceRequest.Format(request.Gpus)} whole GPUs");
            else
                text.Append($"needs {ResourceRequest.Format(request.Gpus)} GPU");
            if (_gpus.Length == 0)
            {
                text.Append($", but the host has no GPU ({_noGpuHint})");
            }
            else
            {
                for (var i = 0; i < _gpus.Length; i++)
                    text.Append($", {ResourceRequest.Format(ResourceRequest.Scale - _gpuUsed[i])} free on gpu{_gpus[i].Ordinal}");
            }
            parts.Add(text.ToString());
        }
        foreach (var (name, units) in request.Custom)
        {
            if (!_customCapacity.TryGetValue(name, out var capacity))
                parts.Add($"needs {ResourceRequest.Format(units)} \"{name}\", but the host has no resource \"{name}\" (set ServeOptions.Resources.Custom[\"{name}\"])");
            else if (capacity - _customUsed.GetValueOrDefault(name) < units)
                parts.Add($"needs {ResourceRequest.Format(units)} \"{name}\", {ResourceRequest.Format(capacity - _customUsed.GetValueOrDefault(name))} of {ResourceRequest.Format(capacity)} free");
        }
        return "Unschedulable: " + string.Join("; ", parts);
    }
}
