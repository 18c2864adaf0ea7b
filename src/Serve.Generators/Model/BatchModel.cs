namespace Serve.Generators.Model
{
    /// <summary>A <c>[Batch]</c> method's batching: its settings and the names of the generated queue members.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches.</remarks>
    /// <param name="FieldName">The generated queue field, e.g. <c>__serveBatch_Predict_0</c>.</param>
    /// <param name="PropertyName">The generated private settings property, e.g. <c>PredictBatch</c>.</param>
    /// <param name="MaxBatchSize">The attribute's MaxBatchSize.</param>
    /// <param name="BatchWaitTimeoutMs">The attribute's BatchWaitTimeoutMs.</param>
    /// <param name="MaxConcurrentBatches">The attribute's MaxConcurrentBatches.</param>
    internal sealed record BatchModel(
        string FieldName,
        string PropertyName,
        int MaxBatchSize,
        int BatchWaitTimeoutMs,
        int MaxConcurrentBatches);
}
