using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Serve.Batching;

/// <summary>
/// The batch queue of a streaming <c>[Batch]</c> method: <c>IAsyncEnumerable&lt;IReadOnlyList&lt;TResult&gt;&gt;</c> over
/// a batch of <c>TItem</c>s, where each yielded list holds the next item of every call's stream, in input order.
/// Batches form exactly as for value methods (<see cref="Queue"/>); created by generated code, not for user code.
/// </summary>
/// <remarks>
/// Each call's stream holds one item at a time: the batch pulls its next step only when every caller still
/// listening has taken its previous item (the slowest consumer sets the pace). A caller that stops early or cancels
/// leaves the batch (before it starts) or stops receiving (after); when every caller of a running batch has stopped,
/// the method's token is cancelled.
/// </remarks>
/// <typeparam name="TItem">One call's input.</typeparam>
/// <typeparam name="TResult">One item of one call's stream.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class StreamBatchQueue<TItem, TResult>
{
    private readonly BatchQueue<Request, bool> _queue;
    private readonly Func<object, IReadOnlyList<TItem>, CancellationToken, IAsyncEnumerable<IReadOnlyList<TResult>>> _method;

    /// <summary>Creates the queue; called from the generated field initializer.</summary>
    public StreamBatchQueue(string methodName, int maxBatchSize, int batchWaitTimeoutMs, int maxConcurrentBatches,
        Func<object, IReadOnlyList<TItem>, CancellationToken, IAsyncEnumerable<IReadOnlyList<TResult>>> method)
    {
        ArgumentNullException.ThrowIfNull(method);
        _method = method;
        _queue = new BatchQueue<Request, bool>(methodName, maxBatchSize, batchWaitTimeoutMs, maxConcurrentBatches, RunAsync);
    }

    /// <summary>The settings and counters, as for a value <c>[Batch]</c> method.</summary>
    public BatchQueue Queue => _queue;

    /// <summary>One call: joins a batch of <paramref name="instance"/> when enumerated and streams its items.</summary>
    public IAsyncEnumerable<TResult> Stream(object instance, TItem item, CancellationToken cancellationToken) =>
        StreamAsync(instance, item, cancellationToken);

    private async IAsyncEnumerable<TResult> StreamAsync(object instance, TItem item, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : new CancellationTokenSource();
        var request = new Request(item, call.Token);
        var batch = _queue.EnqueueAsync(instance, request, call.Token).AsTask();
        var ended = false;
        try
        {
            var reader = request.Items.Reader;
            while (await reader.WaitToReadAsync(call.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var next))
                    yield return next;
            }
            ended = true;
        }
        finally
        {
            if (!ended)
                call.Cancel();
            // The batch's own outcome reached this stream through the channel; nobody else reads it.
            _ = batch.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async ValueTask<IReadOnlyList<bool>> RunAsync(object instance, IReadOnlyList<Request> requests, CancellationToken cancellationToken)
    {
        var count = requests.Count;
        var inputs = new TItem[count];
        for (var i = 0; i < count; i++)
            inputs[i] = requests[i].Item;
        try
        {
            var step = 0;
            await foreach (var items in _method(instance, inputs, cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                step++;
                if (items is null || items.Count != count)
                {
                    throw new InvalidOperationException(
                        $"Batch method '{_queue.MethodName}' yielded {(items is null ? "null" : items.Count + " item(s)")} at step {step} for a batch of {count} call(s); " +
                        "a streaming [Batch] method must yield exactly one item per input, in input order, at every step. Every stream of this batch failed.");
                }
                for (var i = 0; i < count; i++)
                {
                    var request = requests[i];
                    if (request.Abandoned)
                        continue;
                    try
                    {
                        await request.Items.Writer.WriteAsync(items[i], request.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        request.Abandoned = true;
                    }
                }
            }
            foreach (var request in requests)
                request.Items.Writer.TryComplete();
        }
        catch (Exception e)
        {
            foreach (var request in requests)
                request.Items.Writer.TryComplete(e);
            throw;
        }
        return new bool[count];
    }

    private sealed class Request(TItem item, CancellationToken token)
    {
        public readonly TItem Item = item;
        public readonly CancellationToken Token = token;
        public readonly Channel<TResult> Items = Channel.CreateBounded<TResult>(new BoundedChannelOptions(1)
        {
            SingleReader = true,
            SingleWriter = true,
        });
        public bool Abandoned;
    }
}
