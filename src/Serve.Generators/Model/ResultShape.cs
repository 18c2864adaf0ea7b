namespace Serve.Generators.Model
{
    /// <summary>What a deployment method returns, which decides how its argument struct adapts the result.</summary>
    /// <remarks>A plain enum, so models holding it stay cacheable.</remarks>
    internal enum ResultShape
    {
        /// <summary><c>T</c>.</summary>
        Value,
        /// <summary><c>Task&lt;T&gt;</c>.</summary>
        TaskOfT,
        /// <summary><c>ValueTask&lt;T&gt;</c>.</summary>
        ValueTaskOfT,
        /// <summary><c>void</c>.</summary>
        Void,
        /// <summary><c>Task</c>.</summary>
        Task,
        /// <summary><c>ValueTask</c>.</summary>
        ValueTask,
        /// <summary><c>IAsyncEnumerable&lt;T&gt;</c>.</summary>
        Stream,
    }
}
