namespace Serve.CodeGeneration;

/// <summary>
/// A boxed argument could not be read as its parameter's type (missing, of another type, unreadable or null JSON). It
/// is an <see cref="ArgumentException"/> to callers of untyped handles; the HTTP ingress answers it with 400 and its
/// message, which names the method and parameter.
/// </summary>
internal sealed class ArgumentBindingException : ArgumentException
{
    public ArgumentBindingException(string message) : base(message)
    {
    }

    public ArgumentBindingException(string message, Exception inner) : base(message, inner)
    {
    }
}
