namespace Serve;

/// <summary>
/// An isolated deployment's code could not be loaded or cannot be called across its boundary: a folder or assembly
/// that does not exist, a type that is not a deployment, a dependency that cannot be resolved, or a method whose
/// parameter or result type can neither be shared nor serialized. The message names the deployment, the thing and
/// the fix. Retrying does not help, so a replica start that fails with it is not retried.
/// </summary>
public sealed class IsolationException : ServeException
{
    /// <summary>Creates the exception.</summary>
    public IsolationException(string deploymentName, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        DeploymentName = deploymentName;
    }

    /// <summary>The deployment whose code could not be loaded or called.</summary>
    public string DeploymentName { get; }
}

/// <summary>
/// An exception thrown by an isolated deployment whose type exists only in the deployment's own load context. It
/// crosses the boundary as this exception, with the original type name, message and stack trace (the original
/// object would keep the deployment's code loaded for as long as anyone holds it). Exceptions of shared types (the
/// BCL's, Serve's, contract assemblies') cross as they are.
/// </summary>
public sealed class BoundaryException : ServeException
{
    private readonly string? _remoteStackTrace;

    /// <summary>Captures <paramref name="original"/> (and its inner exceptions, recursively).</summary>
    public BoundaryException(Exception original, Exception? innerException)
        : base(original?.Message ?? "", innerException)
    {
        ArgumentNullException.ThrowIfNull(original);
        ExceptionType = original.GetType().FullName ?? original.GetType().Name;
        _remoteStackTrace = original.StackTrace;
        HResult = original.HResult;
        Source = original.Source;
    }

    /// <summary>The full name of the original exception's type, e.g. <c>MyModels.ModelNotReadyException</c>.</summary>
    public string ExceptionType { get; }

    /// <summary>The original stack trace (inside the isolated context), followed by where it crossed.</summary>
    public override string? StackTrace
    {
        get
        {
            var local = base.StackTrace;
            if (_remoteStackTrace is null)
                return local;
            return local is null
                ? _remoteStackTrace
                : _remoteStackTrace + Environment.NewLine + "--- End of stack trace from the isolated load context ---" + Environment.NewLine + local;
        }
    }

    /// <summary>The original type name and message, the inner exceptions, then the stack trace.</summary>
    public override string ToString()
    {
        var text = $"{ExceptionType}: {Message} (crossed as {nameof(BoundaryException)})";
        if (InnerException is not null)
            text += " ---> " + InnerException + Environment.NewLine + "   --- End of inner exception stack trace ---";
        return StackTrace is { } trace ? text + Environment.NewLine + trace : text;
    }
}
