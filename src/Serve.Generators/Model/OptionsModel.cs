namespace Serve.Generators.Model
{
    /// <summary>The <c>[Deployment(...)]</c> named arguments that were set (and are in range); null means unset.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    internal sealed record OptionsModel(
        int? NumReplicas = null,
        int? MaxOngoingRequests = null,
        int? MaxQueuedRequests = null,
        string? RoutePrefix = null,
        string? Version = null,
        double? NumCpus = null,
        double? NumGpus = null,
        double? GracefulShutdownTimeoutSeconds = null,
        double? HealthCheckPeriodSeconds = null,
        double? HealthCheckTimeoutSeconds = null,
        bool? AllowUnknownJsonProperties = null,
        bool? RetryOnNodeFailure = null,
        int? MaxReplicasPerNode = null,
        string? NodeSelector = null);
}
