using System.Diagnostics;

namespace Serve.Control;

internal sealed partial class ServeController
{
    /// <summary>Applies a (re)deployed spec's autoscaling settings: the target, and the sampling timer.</summary>
    private void ConfigureAutoscaling(ApplicationState app, DeploymentState d)
    {
        var options = d.Spec.Options.Autoscaling;
        if (options is null)
        {
            d.Autoscaler?.Dispose();
            d.Autoscaler = null;
            d.AutoscaleTarget = null;
            d.Endpoint.Router.QueuedWithoutReplicas = null;
            return;
        }
        d.AutoscaleTarget = d.AutoscaleTarget is { } current
            ? Math.Clamp(current, options.MinReplicas, options.MaxReplicas)
            : options.InitialReplicas ?? options.MinReplicas;
        if (d.Autoscaler is null || d.Autoscaler.Interval != options.MetricsInterval)
        {
            d.Autoscaler?.Dispose();
            d.Autoscaler = new Autoscaler(options.MetricsInterval, () => Post(new AutoscaleTick(app, d)));
        }
        // A call that finds no replica must not wait a metrics interval (or an upscale delay) for one.
        d.Endpoint.Router.QueuedWithoutReplicas = () => Post(new ScaleFromZero(app, d));
    }

    private void OnAutoscaleTick(ApplicationState app, DeploymentState d)
    {
        if (d.Removing || app.Deleting || d.Spec.Options.Autoscaling is not { } options || d.Autoscaler is not { } autoscaler || d.AutoscaleTarget is not { } current)
        {
            d.Autoscaler?.Dispose();
            d.Autoscaler = null;
            return;
        }
        var load = (double)d.Endpoint.Router.QueuedCount;
        foreach (var r in d.Replicas)
        {
            if (r.State == ReplicaState.Running)
                load += r.Replica.Ongoing;
        }
        var target = autoscaler.Decide(options, current, load, Stopwatch.GetTimestamp());
        if (target == current)
            return;
        Log.Autoscaled(_logger, app.Name, d.Name, current, target, autoscaler.AverageLoad);
        _metrics?.Recent.RecordDecision(new(DateTimeOffset.UtcNow, app.Name, d.Name, current, target, autoscaler.AverageLoad));
        d.AutoscaleTarget = target;
        Reconcile(d);
        CheckApplication(app);
        PublishStatus();
    }

    private void OnScaleFromZero(ApplicationState app, DeploymentState d)
    {
        if (d.Removing || app.Deleting || d.AutoscaleTarget is not 0 || d.Spec.Options.Autoscaling is not { MaxReplicas: > 0 })
            return;
        Log.Autoscaled(_logger, app.Name, d.Name, 0, 1, d.Endpoint.Router.QueuedCount);
        _metrics?.Recent.RecordDecision(new(DateTimeOffset.UtcNow, app.Name, d.Name, 0, 1, d.Endpoint.Router.QueuedCount));
        d.AutoscaleTarget = 1;
        Reconcile(d);
        PublishStatus();
    }
}
