using Serve;

namespace HttpBench;

/// <summary>The small JSON object both servers answer: <c>{"message":"hello","value":42}</c>.</summary>
public sealed record Reply(string Message, int Value)
{
    /// <summary>A new reply, built per request on both sides so that they do the same work.</summary>
    public static Reply Create() => new("hello", 42);
}

/// <summary>The Serve side: a deployment with the default options whose call method returns <see cref="Reply"/>.</summary>
[Deployment]
public partial class Hello
{
    /// <summary>Answers every request with the same small object.</summary>
    public Reply Call() => Reply.Create();
}
