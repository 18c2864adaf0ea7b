using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace Serve.Benchmarks;

/// <summary>
/// Runs every <c>[Benchmark]</c> method of the assembly once, with its global and iteration setup and cleanup, and
/// checks its result against <see cref="ExpectedResultAttribute"/>, so a broken benchmark fails loudly before
/// BenchmarkDotNet spends minutes measuring it.
/// </summary>
internal static class Smoke
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    public static async Task<bool> RunAsync(TextWriter output)
    {
        var failures = 0;
        var count = 0;
        foreach (var type in typeof(Smoke).Assembly.GetTypes())
        {
            var benchmarks = type.GetMethods(BindingFlags.Public | BindingFlags.Instance)
                .Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)
                .OrderBy(m => m.Name, StringComparer.Ordinal)
                .ToArray();
            if (benchmarks.Length == 0)
                continue;
            var instance = Activator.CreateInstance(type)!;
            Invoke<GlobalSetupAttribute>(type, instance, null);
            try
            {
                foreach (var method in benchmarks)
                {
                    count++;
                    try
                    {
                        await CheckAsync(type, instance, method);
                        output.WriteLine($"smoke ok    {type.Name}.{method.Name}");
                    }
                    catch (Exception e)
                    {
                        failures++;
                        output.WriteLine($"smoke FAIL  {type.Name}.{method.Name}: {e.GetType().Name}: {e.Message}");
                    }
                }
            }
            finally
            {
                Invoke<GlobalCleanupAttribute>(type, instance, null);
            }
        }
        if (count == 0)
        {
            output.WriteLine("smoke FAIL  no [Benchmark] methods found");
            return false;
        }
        output.WriteLine(failures == 0 ? $"smoke: all {count} benchmarks returned the expected result" : $"smoke: {failures} of {count} benchmarks FAILED");
        return failures == 0;
    }

    private static async Task CheckAsync(Type type, object instance, MethodInfo method)
    {
        var expected = method.GetCustomAttribute<ExpectedResultAttribute>()
            ?? throw new InvalidOperationException("has no [ExpectedResult]; every benchmark must state what it returns so the smoke check can verify it.");
        Invoke<IterationSetupAttribute>(type, instance, method.Name);
        try
        {
            var result = await AwaitAsync(method.Invoke(instance, null)).WaitAsync(s_timeout);
            var actual = result switch
            {
                DeploymentHandle handle => await AwaitAsync(handle.InvokeCallAsync([HandleBenchmarks.Argument])).WaitAsync(s_timeout),
                _ => result,
            };
            if (actual is null || Convert.ToInt64(actual, System.Globalization.CultureInfo.InvariantCulture) != expected.Value)
                throw new InvalidOperationException($"returned {actual ?? "null"}, expected {expected.Value}.");
        }
        finally
        {
            Invoke<IterationCleanupAttribute>(type, instance, method.Name);
        }
    }

    /// <summary>Awaits a Task, Task&lt;T&gt;, ValueTask or ValueTask&lt;T&gt; and returns its result; other values pass through.</summary>
    private static async Task<object?> AwaitAsync(object? value)
    {
        var task = value switch
        {
            Task t => t,
            ValueTask vt => vt.AsTask(),
            null => null,
            _ when value.GetType() is { IsGenericType: true } t && t.GetGenericTypeDefinition() == typeof(ValueTask<>)
                => (Task)t.GetMethod(nameof(ValueTask<int>.AsTask))!.Invoke(value, null)!,
            _ => null,
        };
        if (task is null)
            return value;
        await task;
        var type = task.GetType();
        return type.IsGenericType ? type.GetProperty(nameof(Task<int>.Result))!.GetValue(task) : null;
    }

    /// <summary>Invokes the setup or cleanup methods marked with <typeparamref name="TAttribute"/> that apply to <paramref name="benchmark"/>.</summary>
    private static void Invoke<TAttribute>(Type type, object instance, string? benchmark) where TAttribute : TargetedAttribute
    {
        foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance))
        {
            if (method.GetCustomAttribute<TAttribute>() is not { } attribute)
                continue;
            var targets = attribute.Targets ?? [];
            if (targets.Length == 0 || (benchmark is not null && targets.Contains(benchmark)))
                Invoke(method, instance);
        }
    }

    private static void Invoke(MethodInfo method, object instance)
    {
        try
        {
            method.Invoke(instance, null);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
        }
    }
}
