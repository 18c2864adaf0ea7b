namespace Serve.Graphs;

/// <summary>
/// Runs a compiled graph for one request: every call goes through the target deployment's handle (so its router,
/// queue, backpressure and replicas apply); a call starts as soon as the values it takes are ready, so independent
/// branches run at the same time. The first failure cancels the calls still running and is rethrown unchanged.
/// </summary>
internal static class GraphExecutor
{
    public static async ValueTask<object?> RunAsync(GraphPlan plan, DeploymentHandle[] handles, object? input, CancellationToken cancellationToken)
    {
        var steps = plan.Steps;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var results = new Task<object?>[steps.Length];
        for (var i = 0; i < steps.Length; i++)
            results[i] = RunStepAsync(steps[i], results, handles, input, plan.Parallel, failed);
        // Every step is an ancestor of the output, and each step waits for all its arguments (Task.WhenAll), so when
        // the output completes every step has completed and every failure has been observed.
        return await results[^1].ConfigureAwait(false);
    }

    private static Task<object?> RunStepAsync(GraphStep step, Task<object?>[] results, DeploymentHandle[] handles, object? input, bool parallel, CancellationTokenSource failed)
    {
        switch (step.Kind)
        {
            case GraphStepKind.Input:
                return Task.FromResult(input);
            case GraphStepKind.Constant:
                return Task.FromResult(step.Constant);
            default:
                return RunAsync(step, results, handles, parallel, failed);
        }
    }

    private static async Task<object?> RunAsync(GraphStep step, Task<object?>[] results, DeploymentHandle[] handles, bool parallel, CancellationTokenSource failed)
    {
        try
        {
            var arguments = new object?[step.Arguments.Length];
            var pending = false;
            for (var i = 0; i < arguments.Length; i++)
                pending |= !results[step.Arguments[i]].IsCompletedSuccessfully;
            if (pending)
            {
                var waits = new Task<object?>[arguments.Length];
                for (var i = 0; i < waits.Length; i++)
                    waits[i] = results[step.Arguments[i]];
                await Task.WhenAll(waits).ConfigureAwait(false);
            }
            for (var i = 0; i < arguments.Length; i++)
                arguments[i] = await results[step.Arguments[i]].ConfigureAwait(false);

            if (step.Kind == GraphStepKind.Select)
                return step.Select!.Apply(arguments[0]);

            var handle = handles[step.Target];
            var token = failed.Token;
            // A handle call runs the user method on the calling thread; when another call may run beside this one,
            // start it on the thread pool so a synchronous deployment does not hold up its sibling branches.
            if (parallel)
                return await Task.Run(() => handle.InvokeByIdAsync(step.MethodId, arguments, token).AsTask(), token).ConfigureAwait(false);
            return await handle.InvokeByIdAsync(step.MethodId, arguments, token).ConfigureAwait(false);
        }
        catch
        {
            try
            {
                failed.Cancel();
            }
            catch (AggregateException)
            {
                // A cancellation callback in user code threw; the original failure is what the caller sees.
            }
            throw;
        }
    }
}
