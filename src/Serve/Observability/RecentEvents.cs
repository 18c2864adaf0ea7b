namespace Serve.Observability;

/// <summary>One failed HTTP request as the dashboard lists it.</summary>
internal sealed record RecentError(DateTimeOffset Time, string RequestId, string Application, string Deployment, string Method, string Path,
    int StatusCode, string Error);

/// <summary>One change of an autoscaled deployment's target replica count.</summary>
internal sealed record AutoscaleDecision(DateTimeOffset Time, string Application, string Deployment, int From, int To, double Load);

/// <summary>
/// The last few failed requests and autoscaler decisions of one host, newest last, for the admin API's dashboard.
/// Written on failure and on scaling only, never on a successful call, so a small lock is cheap enough.
/// </summary>
internal sealed class RecentEvents
{
    public const int Capacity = 50;

    private readonly Queue<RecentError> _errors = new();
    private readonly Queue<AutoscaleDecision> _decisions = new();
    private readonly Lock _lock = new();

    public void RecordError(RecentError error)
    {
        lock (_lock)
        {
            if (_errors.Count == Capacity)
                _errors.Dequeue();
            _errors.Enqueue(error);
        }
    }

    public void RecordDecision(AutoscaleDecision decision)
    {
        lock (_lock)
        {
            if (_decisions.Count == Capacity)
                _decisions.Dequeue();
            _decisions.Enqueue(decision);
        }
    }

    public RecentError[] Errors()
    {
        lock (_lock)
            return [.. _errors];
    }

    public AutoscaleDecision[] Decisions()
    {
        lock (_lock)
            return [.. _decisions];
    }
}
