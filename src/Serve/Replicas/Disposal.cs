namespace Serve.Replicas;

/// <summary>Disposes what Serve owns on the user's behalf (replica instances, loaded models): async first.</summary>
internal static class Disposal
{
    public static ValueTask DisposeAsync(object? value)
    {
        switch (value)
        {
            case IAsyncDisposable asyncDisposable:
                return asyncDisposable.DisposeAsync();
            case IDisposable disposable:
                disposable.Dispose();
                return default;
            default:
                return default;
        }
    }
}
