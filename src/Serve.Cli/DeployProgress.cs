namespace Serve.Cli;

/// <summary>
/// What <c>serve run</c> prints while an application deploys: a line per deployment each time what it waits on
/// changes (replicas starting, resources, a retry after a failed start), read from the host's status every 250 ms.
/// </summary>
internal static class DeployProgress
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    /// <summary>Reports <paramref name="application"/> until <paramref name="deploying"/> ends (whichever way).</summary>
    public static async Task FollowAsync(IServeClient serve, string application, Task deploying, TextWriter output)
    {
        var last = new Dictionary<string, string>(StringComparer.Ordinal);
        while (true)
        {
            var done = deploying.IsCompleted;
            if (Find(serve, application) is { } app)
            {
                foreach (var d in app.Deployments)
                {
                    var line = Describe(d);
                    if (last.TryGetValue(d.Name, out var previous) && previous == line)
                        continue;
                    last[d.Name] = line;
                    await output.WriteLineAsync($"  {d.Name}: {line}").ConfigureAwait(false);
                }
            }
            if (done)
                return;
            await Task.WhenAny(deploying, Task.Delay(Interval)).ConfigureAwait(false);
        }
    }

    private static ApplicationInfo? Find(IServeClient serve, string application)
    {
        try
        {
            return serve.GetStatus().Applications.FirstOrDefault(a => a.Name == application);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>One deployment's state in words: ready, failed, or what it is waiting on.</summary>
    internal static string Describe(DeploymentInfo d)
    {
        var running = d.Replicas.Count(r => r.State == ReplicaState.Running && r.Version == d.Version);
        var counts = $"{running}/{d.TargetReplicas} replica(s) running";
        if (d.Status == ServeHealth.Healthy)
            return $"ready, {counts}";
        if (d.Status == ServeHealth.Unhealthy)
            return $"failed: {d.Message}";
        if (d.Message.Length > 0)
            return $"waiting, {counts}: {d.Message}";
        var starting = d.Replicas.Count(r => r.State == ReplicaState.Starting);
        if (starting > 0)
            return $"waiting for {starting} replica(s) to start, {counts}";
        var stopping = d.Replicas.Count(r => r.State == ReplicaState.Stopping);
        if (stopping > 0)
            return $"waiting for {stopping} old replica(s) to stop, {counts}";
        return running < d.TargetReplicas ? $"waiting for replicas to be placed, {counts}" : $"updating, {counts}";
    }
}
