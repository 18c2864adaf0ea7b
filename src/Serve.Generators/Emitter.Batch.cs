using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    internal static partial class Emitter
    {
        private const string ReadOnlyListType = "global::System.Collections.Generic.IReadOnlyList";

        // Per [Batch] method: the replica's batch queue (a field, so every instance has its own) and the private
        // settings property the user's code changes at run time.
        private static void WriteBatchQueues(SourceWriter w, DeploymentModel model)
        {
            foreach (var method in model.Methods)
            {
                if (method.Batch is not { } batch)
                    continue;
                var item = method.Parameters.First(p => p.Kind != ParameterKind.CancellationToken).Type;
                var results = ReadOnlyListType + "<" + method.ResultType + ">";
                var arguments = string.Join(", ", method.Parameters.Select(p => p.Kind == ParameterKind.CancellationToken ? "cancellationToken" : "items"));
                var call = "((" + model.ImplementationType + ")instance)." + Identifier(method.Name) + "(" + arguments + ")";
                if (method.Shape is not (ResultShape.ValueTaskOfT or ResultShape.Stream))
                    call = "new " + ValueTaskType + "<" + results + ">(" + call + ")";
                var queue = method.Shape == ResultShape.Stream ? "StreamBatchQueue" : "BatchQueue";
                w.WriteLine(NeverBrowsable);
                w.WriteLine("private readonly global::Serve.Batching." + queue + "<" + item + ", " + method.ResultType + "> " + batch.FieldName + " = new(");
                w.Indent();
                w.WriteLine(Literal(MethodDisplay(model, method)) + ", " + Literal(batch.MaxBatchSize) + ", " + Literal(batch.BatchWaitTimeoutMs) + ", " + Literal(batch.MaxConcurrentBatches) + ",");
                w.WriteLine("static (instance, items, cancellationToken) => " + call + ");");
                w.Unindent();
                w.WriteLine();
                w.WriteLine("/// <summary>");
                w.WriteLine("/// This replica's batching of <c>" + method.Name + "</c> (from its <c>[Batch]</c> attribute); set its properties, e.g. in");
                w.WriteLine("/// <c>ReconfigureAsync</c>, to change batching at run time.");
                w.WriteLine("/// </summary>");
                w.WriteLine("private global::Serve.Batching.BatchQueue " + batch.PropertyName + " => " + batch.FieldName + (method.Shape == ResultShape.Stream ? ".Queue;" : ";"));
                w.WriteLine();
            }
        }

        // The definition's accessor the replica calls once at start: its instance's queues, so stopping and the batch
        // metric reach them without a table keyed by the instance.
        private static void WriteBatchQueuesAccessor(SourceWriter w, DeploymentModel model)
        {
            var queues = model.Methods
                .Where(m => m.Batch is not null)
                .Select(m => "((" + model.ImplementationType + ")instance)." + m.Batch!.FieldName + (m.Shape == ResultShape.Stream ? ".Queue" : ""))
                .ToArray();
            if (queues.Length == 0)
                return;
            w.WriteLine("BatchQueues = static instance => new global::Serve.Batching.BatchQueue[]");
            w.OpenBlock();
            foreach (var queue in queues)
                w.WriteLine(queue + ",");
            w.CloseBlock(",");
        }

        private static void WriteBatchInvocation(SourceWriter w, DeploymentModel model, MethodModel method, BatchModel batch, string signature)
        {
            var item = method.Parameters.First(p => p.Kind != ParameterKind.CancellationToken);
            var field = "((" + model.ImplementationType + ")instance)." + batch.FieldName;
            if (method.Shape == ResultShape.Stream)
            {
                w.WriteLine("public " + AsyncEnumerableType + "<" + method.ResultType + "> Invoke" + signature);
                w.Indent();
                w.WriteLine("=> " + field + ".Stream(instance, _" + item.Name + ", cancellationToken);");
            }
            else
            {
                w.WriteLine("public " + ValueTaskType + "<" + method.ResultType + "> InvokeAsync" + signature);
                w.Indent();
                w.WriteLine("=> " + field + ".EnqueueAsync(instance, _" + item.Name + ", cancellationToken);");
            }
            w.Unindent();
        }
    }
}
