using Microsoft.Extensions.Logging;
using Serve.Config;

namespace Serve.Control;

/// <summary>
/// Applies admin writes to a host: a PUT of a config document (deploy every listed application, delete the others) and
/// a DELETE of one application or of all. The admin API calls it, and on a cluster node so does the cluster layer for
/// the writes other nodes received; one lock serializes them, so a heartbeat and a request never apply at once.
/// On a cluster node each write is first recorded by the cluster controller (an ordered, revisioned log every node
/// applies in order): the node that received it applies it at once, the others with their next heartbeat.
/// </summary>
internal sealed partial class AdminApplier(ServeHost host, IClusterLayer? cluster, ILogger logger)
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private volatile AdminApplied _applied = AdminApplied.None;
    private volatile string _error = "";

    /// <summary>Parses a logged PUT's document on this node (replaceable in tests, to make one node's import fail).</summary>
    internal Func<string, string, bool, ServeConfig> LoadDocument { get; set; } = static (text, source, yaml) => ServeConfigLoader.LoadText(text, source, yaml);

    /// <summary>The last operation of the controller's admin log this node applied (or failed to apply: never retried).</summary>
    public AdminApplied Applied => _applied;

    /// <summary>Why the last logged operation this node applied failed, naming node, revision and error; empty when none did.</summary>
    public string Error => _error;

    /// <summary>
    /// Applies a parsed config document (PUT). On a cluster node it is recorded by the controller first; a controller
    /// that cannot be reached throws <see cref="ClusterUnavailableException"/> and nothing changes.
    /// </summary>
    public async Task PutAsync(ServeConfig config, string text, bool yaml, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (cluster is null)
            {
                await ApplyAsync(config, cancellationToken).ConfigureAwait(false);
                return;
            }
            var names = config.Applications.Select(a => a.Name).ToArray();
            var pending = await cluster.RecordAdminAsync(new AdminOperation("", 0, text, yaml, null, names, cluster.NodeId), _applied, cancellationToken).ConfigureAwait(false);
            await ApplyRecordedAsync(pending, () => ApplyAsync(config, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Deletes one application, or all when <paramref name="name"/> is null (DELETE). Returns the 404 message when this
    /// host has no application of that name (nothing is recorded then), else null.
    /// </summary>
    public async Task<string?> DeleteAsync(string? name, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var names = host.GetStatus().Applications.Select(a => a.Name).ToArray();
            if (name is not null && !names.Contains(name, StringComparer.Ordinal))
                return $"No application named '{name}'. Applications: {(names.Length == 0 ? "none" : string.Join(", ", names))}.";
            if (cluster is null)
            {
                await DeleteAppsAsync(name, cancellationToken).ConfigureAwait(false);
                return null;
            }
            var pending = await cluster.RecordAdminAsync(new AdminOperation("", 0, null, false, name, name is null ? [] : [name], cluster.NodeId), _applied, cancellationToken).ConfigureAwait(false);
            await ApplyRecordedAsync(pending, () => DeleteAppsAsync(name, cancellationToken), cancellationToken).ConfigureAwait(false);
            return null;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Applies, in order, the operations of the controller's admin log this node has not applied yet (the heartbeat's
    /// reply carries them). A failing one is reported (<see cref="Error"/>, the log) and not retried.
    /// </summary>
    public async Task ApplyLogAsync(IReadOnlyList<AdminOperation> operations, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var operation in operations)
            {
                if (_applied.Covers(operation))
                    continue;
                await ApplyLoggedAsync(operation, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>What the controller answered a recorded write: others' operations not applied here yet, then this one (last), which the caller applies with its parsed document.</summary>
    private async Task ApplyRecordedAsync(IReadOnlyList<AdminOperation> pending, Func<Task> applyOwn, CancellationToken cancellationToken)
    {
        for (var i = 0; i < pending.Count - 1; i++)
        {
            if (!_applied.Covers(pending[i]))
                await ApplyLoggedAsync(pending[i], cancellationToken).ConfigureAwait(false);
        }
        var own = pending[pending.Count - 1];
        try
        {
            await applyOwn().ConfigureAwait(false);
            if (own.IsBase)
                _error = "";
        }
        catch (Exception e)
        {
            // The request answers with the error; the node's status keeps it too, like a failure of another node's write.
            Failed(own, e);
            throw;
        }
        finally
        {
            _applied = new AdminApplied(own.LogId, own.Revision);
        }
    }

    private async Task ApplyLoggedAsync(AdminOperation operation, CancellationToken cancellationToken)
    {
        try
        {
            if (operation.Document is { } document)
            {
                var config = LoadDocument(document, $"admin operation {operation.Revision} (PUT on node {operation.Node})", operation.Yaml);
                await ApplyAsync(config, cancellationToken).ConfigureAwait(false);
            }
            else
                await DeleteAppsAsync(operation.Application, cancellationToken).ConfigureAwait(false);
            if (operation.IsBase)
                _error = "";
            LogApplied(logger, operation.Revision, operation.Describe(), operation.Node);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Failed(operation, e);
        }
        finally
        {
            _applied = new AdminApplied(operation.LogId, operation.Revision);
        }
    }

    private void Failed(AdminOperation operation, Exception e)
    {
        var node = cluster?.NodeId ?? "local";
        _error = $"Node {node} failed admin operation {operation.Revision} ({operation.Describe()}, received by node {operation.Node}): {e.Message} " +
                 "It is not retried: fix the cause on this node (e.g. deploy the same assemblies on every node) and send the write again.";
        LogFailed(logger, node, operation.Revision, operation.Describe(), operation.Node, e.Message);
    }

    /// <summary>A config document's effect (what <c>PUT /api/serve/applications</c> does).</summary>
    internal async Task ApplyAsync(ServeConfig config, CancellationToken cancellationToken)
    {
        var listed = config.Applications.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        // An application the document drops goes first when a listed one takes over its route prefix (a rename
        // keeping the prefix); the others keep serving until the listed ones are deployed.
        var claimed = config.Applications.Select(a => a.ServedRoutePrefix).ToHashSet(StringComparer.Ordinal);
        foreach (var stale in host.LocalStatus.Applications.Where(a => !listed.Contains(a.Name) && claimed.Contains(a.RoutePrefix)).Select(a => a.Name).ToArray())
            await host.DeleteAsync(stale, cancellationToken).ConfigureAwait(false);
        foreach (var app in config.Applications)
            await config.ApplyOneAsync(host, app, cancellationToken).ConfigureAwait(false);
        foreach (var stale in host.LocalStatus.Applications.Where(a => !listed.Contains(a.Name)).Select(a => a.Name).ToArray())
            await host.DeleteAsync(stale, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes one application (if this host has it) or all of them.</summary>
    private async Task DeleteAppsAsync(string? name, CancellationToken cancellationToken)
    {
        foreach (var app in host.LocalStatus.Applications.Select(a => a.Name).Where(n => name is null || n == name).ToArray())
            await host.DeleteAsync(app, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(40, LogLevel.Information, "Applied admin operation {Revision} ({Operation}) received by node {Node}.")]
    private static partial void LogApplied(ILogger logger, long revision, string operation, string node);

    [LoggerMessage(41, LogLevel.Error, "Node {Node} failed admin operation {Revision} ({Operation}) received by node {Source}: {Error} It is not retried; fix the cause on this node and send the write again.")]
    private static partial void LogFailed(ILogger logger, string node, long revision, string operation, string source, string error);
}

/// <summary>
/// One admin write as the cluster controller logs it: a PUT of a config document (<see cref="Document"/> set, with the
/// names of the applications it lists) or a DELETE of one application (<see cref="Application"/> set) or of all.
/// </summary>
/// <param name="LogId">The log it belongs to (a controller that lost its storage starts a new one).</param>
/// <param name="Revision">Its place in the log (0 before the controller recorded it).</param>
/// <param name="Document">A PUT's config document, as received; null for a DELETE.</param>
/// <param name="Yaml">The document is YAML (else JSON).</param>
/// <param name="Application">A DELETE's application; null for a PUT or a DELETE of every application.</param>
/// <param name="Applications">The applications a PUT lists, or the one a DELETE names.</param>
/// <param name="Node">The node whose admin API received it.</param>
internal sealed record AdminOperation(string LogId, long Revision, string? Document, bool Yaml, string? Application, string[] Applications, string Node)
{
    /// <summary>A PUT or a DELETE of every application: it supersedes every operation before it.</summary>
    public bool IsBase => Document is not null || Application is null;

    public string Describe() =>
        Document is not null ? $"PUT of a config document listing {(Applications.Length == 0 ? "no application" : string.Join(", ", Applications.Select(a => $"'{a}'")))}"
        : Application is null ? "DELETE of every application"
        : $"DELETE of application '{Application}'";
}

/// <summary>The last operation of an admin log a node applied.</summary>
internal sealed record AdminApplied(string LogId, long Revision)
{
    public static readonly AdminApplied None = new("", 0);

    public bool Covers(AdminOperation operation) => operation.LogId == LogId && operation.Revision <= Revision;
}

/// <summary>
/// The cluster controller cannot be reached, so an admin write was not recorded and nothing changed (the admin API
/// answers 503).
/// </summary>
internal sealed class ClusterUnavailableException(string message, Exception? inner = null) : ServeException(message, inner);
