namespace Serve.Control;

internal sealed partial class ServeController
{
    /// <summary>The failures in a row after which a replica is replaced.</summary>
    internal const int HealthFailuresBeforeReplace = 3;

    /// <summary>
    /// <see cref="ServeOptions.ReplicaStartBackoff"/> doubled <paramref name="doublings"/> times, capped at the longest
    /// wait a timer takes, so many attempts in a row never overflow <see cref="TimeSpan"/> or make <c>Task.Delay</c> throw.
    /// </summary>
    private TimeSpan RetryDelay(int doublings)
    {
        var max = DeploymentOptions.MaxTimerDuration;
        var delay = _options.ReplicaStartBackoff.TotalMilliseconds * Math.Pow(2, Math.Clamp(doublings, 0, 64));
        return delay >= max.TotalMilliseconds ? max : TimeSpan.FromMilliseconds(delay);
    }

    /// <summary>Polls a running replica's health check until the replica starts stopping; each outcome goes to the loop.</summary>
    private void StartHealthChecks(ApplicationState app, DeploymentState d, ReplicaRecord record)
    {
        if (record.Replica.HealthCheck is not { } check)
            return;
        var period = d.Spec.Options.HealthCheckPeriod;
        var timeout = d.Spec.Options.HealthCheckTimeout;
        var stopping = record.Replica.Context.StoppingToken;
        _ = LoopAsync();

        async Task LoopAsync()
        {
            using var timer = new PeriodicTimer(period);
            try
            {
                while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
                {
                    Exception? error = null;
                    using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                    cts.CancelAfter(timeout);
                    try
                    {
                        await check(cts.Token).AsTask().WaitAsync(timeout, stopping).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && cts.IsCancellationRequested))
                    {
                        error = new TimeoutException($"CheckHealthAsync did not complete within HealthCheckTimeout ({timeout.TotalSeconds:0.###} s).");
                    }
                    catch (Exception e)
                    {
                        error = Isolation.Boundary.Translate(e);
                    }
                    Post(new HealthChecked(app, d, record, error));
                }
            }
            catch (OperationCanceledException)
            {
                // The replica is stopping.
            }
        }
    }

    private void OnHealthChecked(ApplicationState app, DeploymentState d, ReplicaRecord record, Exception? error)
    {
        if (record.State != ReplicaState.Running)
            return;
        _metrics?.RecordHealthCheck(record.Replica, failed: error is not null);
        if (error is null)
        {
            record.HealthFailures = 0;
            d.ConsecutiveRestarts = 0;
            return;
        }
        record.HealthFailures++;
        Log.HealthCheckFailed(_logger, record.Replica.ReplicaId, record.HealthFailures, error);
        if (record.HealthFailures < HealthFailuresBeforeReplace)
            return;
        d.Restarts++;
        d.ConsecutiveRestarts++;
        d.LastRestartReason = $"replica {record.Replica.ReplicaId} failed {HealthFailuresBeforeReplace} health checks in a row ({error.GetType().Name}: {error.Message})";
        Log.ReplicaReplaced(_logger, record.Replica.ReplicaId, d.Name, d.LastRestartReason);
        // No new call goes to it from now on; calls in flight finish within GracefulShutdownTimeout.
        StopReplica(d, record);
        if (d.ConsecutiveRestarts > 1 && !d.RetryPending)
        {
            // Replacements that keep failing back off exponentially, like failed starts.
            d.RetryPending = true;
            var delay = RetryDelay(Math.Min(d.ConsecutiveRestarts - 2, 10));
            _ = Task.Delay(delay).ContinueWith(_ => Post(new RetryStart(app, d)), TaskScheduler.Default);
        }
        Reconcile(d);
        CheckApplication(app);
        PublishStatus();
    }
}
