namespace Serve;

/// <summary>
/// Marks a deployment's model loader for model multiplexing (Ray Serve's <c>@serve.multiplexed</c>): a method
/// <c>Task&lt;TModel&gt; LoadModelAsync(string modelId)</c> (or <c>ValueTask&lt;TModel&gt;</c>, optionally with a
/// trailing <see cref="CancellationToken"/>). The generator adds a private <c>GetModelAsync(CancellationToken)</c> to
/// the class that returns the current call's model (<see cref="ReplicaContext.ModelId"/>), loading it with this method
/// on first use and keeping at most <see cref="MaxModelsPerReplica"/> per replica (least recently used evicted and
/// disposed). Callers pick a model with <c>handle.WithModelId("m1")</c> or the HTTP header
/// <c>serve_multiplexed_model_id</c>; the router prefers replicas that already hold it.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class MultiplexedAttribute : Attribute
{
    /// <summary>The default <see cref="MaxModelsPerReplica"/>.</summary>
    public const int DefaultMaxModelsPerReplica = 3;

    /// <summary>How many models one replica keeps loaded; default 3.</summary>
    public int MaxModelsPerReplica { get; set; } = DefaultMaxModelsPerReplica;
}
