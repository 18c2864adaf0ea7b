using System.Threading.Channels;

namespace Serve.Benchmarks;

/// <summary>
/// The alternative a developer would write by hand instead of Serve: a bounded <see cref="Channel{T}"/> of work
/// items, each carrying a <see cref="TaskCompletionSource{TResult}"/> created with
/// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/> (the documented safe default, so a worker never
/// runs a caller's continuation inline), and N worker tasks that read items and invoke the method on their own
/// <see cref="Adder"/> instance. A worker awaits one call at a time.
/// </summary>
/// <remarks>
/// Per call this allocates one <see cref="TaskCompletionSource{TResult}"/> and its <see cref="Task{TResult}"/>; the
/// work item is a struct stored in the channel's buffer. The caller avoids an extra async state machine: when the
/// write completes synchronously (the channel has room) it returns the completion's task directly.
/// </remarks>
public sealed class ChannelWorkerPool : IAsyncDisposable
{
    private readonly Channel<WorkItem> _channel;
    private readonly Task[] _workers;

    public ChannelWorkerPool(int workers, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        _channel = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = workers == 1,
            SingleWriter = false,
        });
        _workers = new Task[workers];
        for (var i = 0; i < workers; i++)
        {
            var target = new Adder();
            _workers[i] = Task.Run(() => WorkAsync(target));
        }
    }

    public int WorkerCount => _workers.Length;

    /// <summary>Runs <see cref="Adder.Call"/> on a worker.</summary>
    public Task<int> CallAsync(int x) => Enqueue(x, isAsync: false);

    /// <summary>Runs <see cref="Adder.AddAsync"/> on a worker.</summary>
    public Task<int> AddAsync(int x) => Enqueue(x, isAsync: true);

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await Task.WhenAll(_workers).ConfigureAwait(false);
    }

    private Task<int> Enqueue(int x, bool isAsync)
    {
        var completion = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var write = _channel.Writer.WriteAsync(new WorkItem(x, isAsync, completion));
        return write.IsCompletedSuccessfully ? completion.Task : WaitForRoomAsync(write, completion);
    }

    private static async Task<int> WaitForRoomAsync(ValueTask write, TaskCompletionSource<int> completion)
    {
        await write.ConfigureAwait(false);
        return await completion.Task.ConfigureAwait(false);
    }

    private async Task WorkAsync(Adder target)
    {
        var reader = _channel.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var item))
            {
                try
                {
                    var result = item.IsAsync ? await target.AddAsync(item.Argument).ConfigureAwait(false) : target.Call(item.Argument);
                    item.Completion.SetResult(result);
                }
                catch (Exception e)
                {
                    item.Completion.SetException(e);
                }
            }
        }
    }

    private readonly record struct WorkItem(int Argument, bool IsAsync, TaskCompletionSource<int> Completion);
}
