using Orleans;
using Serve.Control;

namespace Serve.Orleans;

/// <summary>
/// The admin writes the cluster controller recorded (<c>PUT</c>/<c>DELETE /api/serve/applications</c> on any node), in
/// order, each with its revision; every node applies the ones it has not applied yet. It stays bounded: a PUT (or a
/// DELETE of every application) supersedes everything before it, so the log holds at most the last of those and the
/// deletes of single applications after it, one per name.
/// </summary>
[GenerateSerializer, Alias("Serve.AdminLog")]
internal sealed class AdminLog
{
    /// <summary>Which log this is: a controller that lost its storage starts another, and nodes then apply all of it.</summary>
    [Id(0)] public string LogId { get; set; } = "";

    /// <summary>The revision of the last recorded operation (revisions only grow).</summary>
    [Id(1)] public long Revision { get; set; }

    [Id(2)] public List<AdminLogEntry> Entries { get; set; } = [];

    /// <summary>Appends an operation with the next revision, dropping what it supersedes; returns it with its revision.</summary>
    public AdminLogEntry Append(AdminLogEntry operation)
    {
        if (LogId.Length == 0)
            LogId = Guid.NewGuid().ToString("N");
        var entry = operation with { Revision = ++Revision };
        if (entry.IsBase)
            Entries.Clear();
        else
            Entries.RemoveAll(e => !e.IsBase && e.Application == entry.Application);
        Entries.Add(entry);
        return entry;
    }

    /// <summary>The operations a node that applied up to <paramref name="applied"/> of log <paramref name="logId"/> has not applied yet, in order.</summary>
    public AdminLogEntry[] Pending(string logId, long applied) =>
        Entries.Count == 0 ? []
        : logId == LogId ? [.. Entries.Where(e => e.Revision > applied)]
        : [.. Entries];

    /// <summary>
    /// Whether the cluster runs <paramref name="application"/> as far as the admin writes say: true when no write named
    /// it (nothing recorded, or only deletes of others), false when the last PUT did not list it or a delete after it
    /// removed it. A node still reporting an application the log removed has not applied the log yet.
    /// </summary>
    public bool Allows(string application)
    {
        var allowed = true;
        foreach (var e in Entries)
        {
            if (e.Document is not null)
                allowed = e.Applications.Contains(application, StringComparer.Ordinal);
            else if (e.Application is null || e.Application == application)
                allowed = false;
        }
        return allowed;
    }

    public AdminLog Clone() => new() { LogId = LogId, Revision = Revision, Entries = [.. Entries] };
}

/// <summary>One recorded admin write (see <see cref="AdminOperation"/>, its form on a node).</summary>
[GenerateSerializer, Immutable, Alias("Serve.AdminLogEntry")]
internal sealed record AdminLogEntry(
    [property: Id(0)] long Revision,
    [property: Id(1)] string? Document,
    [property: Id(2)] bool Yaml,
    [property: Id(3)] string? Application,
    [property: Id(4)] string[] Applications,
    [property: Id(5)] string Node,
    [property: Id(6)] DateTime RecordedAt)
{
    /// <summary>A PUT or a DELETE of every application: it supersedes every operation before it.</summary>
    public bool IsBase => Document is not null || Application is null;

    public static AdminLogEntry From(AdminOperation o) => new(o.Revision, o.Document, o.Yaml, o.Application, o.Applications, o.Node, DateTime.UtcNow);

    public AdminOperation ToOperation(string logId) => new(logId, Revision, Document, Yaml, Application, Applications, Node);
}

/// <summary>The controller's answer to a recorded admin write.</summary>
/// <param name="LogId">The admin log the operations belong to.</param>
/// <param name="Pending">What the recording node applies now, in order, the recorded write last.</param>
[GenerateSerializer, Immutable, Alias("Serve.AdminRecorded")]
internal sealed record AdminRecorded(
    [property: Id(0)] string LogId,
    [property: Id(1)] AdminLogEntry[] Pending);
