namespace Serve.Http;

/// <summary>
/// The request's arguments could not be bound to the call (a missing or unknown value, a body of the wrong shape); the
/// ingress answers 400 with <see cref="Exception.Message"/>, which says what was wrong and what to send instead.
/// </summary>
internal sealed class RequestBindingException(string message) : Exception(message);
