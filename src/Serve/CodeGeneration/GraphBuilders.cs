using System.ComponentModel;
using Serve.Graphs;

namespace Serve.CodeGeneration;

/// <summary>Used by the generated graph builders (<c>model.Predict(node)</c>); not for user code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GraphBuilders
{
    /// <summary>A node that calls method <paramref name="methodId"/> of <paramref name="target"/> with the values of <paramref name="arguments"/>.</summary>
    /// <exception cref="ArgumentNullException">An argument node is null; the message names the method and parameter.</exception>
    public static GraphNode<TInput, TResult> Call<TInput, TResult>(Application target, int methodId, string method, string[] parameterNames, GraphNode[] arguments)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(arguments);
        for (var i = 0; i < arguments.Length; i++)
        {
            if (arguments[i] is null)
                throw new ArgumentNullException(parameterNames[i],
                    $"Graph node for parameter '{parameterNames[i]}' of {target.DeploymentName}.{method} is null. Pass a graph node, or a value cast to the parameter type for a constant.");
        }
        return new CallNode<TInput, TResult>(target, methodId, method, arguments);
    }
}
