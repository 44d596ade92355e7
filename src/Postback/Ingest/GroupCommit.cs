using System.Threading.Channels;
using Postback.Orders;

namespace Postback.Ingest;

/// Group commit for event ingest. Requests that arrive while a commit is running wait for the
/// next one and share it: one transaction (one fsync) for everything waiting, instead of one
/// per request. A lone request goes straight through. Each request still gets its own answer:
/// one whose event id conflicts is refused alone, and the others are committed without it; a
/// group that fails for any other reason is split and each half tried again, so whatever one
/// request carries can only ever fail that request. The events API and the inbound plugins
/// both ingest through it. A hosted service: its loop starts with the host, and on stop it
/// takes no new requests and commits those already queued before the host goes on stopping.
public sealed class GroupCommit : IHostedService, IAsyncDisposable
{
    public const int MaxEventsPerCommit = 2_000;

    private sealed record Request(long OrganizationId, IReadOnlyList<IncomingEvent> Events, TaskCompletionSource<IReadOnlyList<IngestedEvent>> Done);

    private readonly Func<long, IReadOnlyList<IncomingEvent>, Task<IReadOnlyList<IngestedEvent>>> _store;
    private readonly ILogger<GroupCommit> _log;
    private readonly Channel<Request> _requests = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    private Task _loop = Task.CompletedTask;

    public GroupCommit(IServiceScopeFactory scopes, ILogger<GroupCommit> log)
        : this(async (organizationId, events) =>
        {
            await using var scope = scopes.CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<EventIngest>().IngestAsync(organizationId, events, CancellationToken.None);
        }, log)
    {
    }

    /// store: one transaction for the events of one organization, all or nothing.
    internal GroupCommit(Func<long, IReadOnlyList<IncomingEvent>, Task<IReadOnlyList<IngestedEvent>>> store, ILogger<GroupCommit> log)
    {
        _store = store;
        _log = log;
    }

    public Task StartAsync(CancellationToken ct)
    {
        // Not under whatever ambient span or context starting the host had.
        using (ExecutionContext.SuppressFlow())
        {
            _loop = Task.Run(LoopAsync, CancellationToken.None);
        }
        return Task.CompletedTask;
    }

    /// Refuses new requests and commits what is queued; past the host's shutdown timeout the
    /// commits still finish on their own (each is one short transaction), the host just stops
    /// waiting for them.
    public async Task StopAsync(CancellationToken ct)
    {
        _requests.Writer.TryComplete();
        await _loop.WaitAsync(ct);
    }

    /// Stores the events. Once queued they are committed even if the caller goes away, so a
    /// client that times out and retries with the same event ids gets "duplicate", not a loss.
    public Task<IReadOnlyList<IngestedEvent>> IngestAsync(long organizationId, IReadOnlyList<IncomingEvent> events, CancellationToken ct)
    {
        var done = new TaskCompletionSource<IReadOnlyList<IngestedEvent>>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Infrastructure.PostbackTracing.CurrentContext() is { } trace)
        {
            events = events.Select(e => e with { TraceParent = e.TraceParent ?? trace }).ToList();
        }
        if (!_requests.Writer.TryWrite(new Request(organizationId, events, done)))
        {
            throw new InvalidOperationException("The hub is stopping.");
        }
        return done.Task.WaitAsync(ct);
    }

    // Two groups may be in progress at once: while one writes (SQLite's single writer, or a
    // PostgreSQL commit), the next reads its orders and builds its rows. A group that shares an
    // order or an event id with the one before it waits for that one to finish first, so it
    // reads what it wrote; anything another writer changes meanwhile is caught by the order's
    // version and the unique indexes, and the ingest retries.
    private async Task LoopAsync()
    {
        var reader = _requests.Reader;
        Task previous = Task.CompletedTask;
        HashSet<(long, long)> previousOrders = [];
        HashSet<(long, string)> previousEvents = [];
        while (await reader.WaitToReadAsync())
        {
            var group = new List<Request>();
            var count = 0;
            while (count < MaxEventsPerCommit && reader.TryRead(out var request))
            {
                group.Add(request);
                count += request.Events.Count;
            }
            var orders = group.SelectMany(r => r.Events.Select(e => (r.OrganizationId, e.Order.OrderId))).ToHashSet();
            var events = group.SelectMany(r => r.Events.Where(e => e.EventId is not null).Select(e => (r.OrganizationId, e.EventId!))).ToHashSet();
            if (orders.Overlaps(previousOrders) || events.Overlaps(previousEvents))
            {
                await previous;
            }
            var current = CommitGroupAsync(group);
            await previous;
            previous = current;
            previousOrders = orders;
            previousEvents = events;
        }
        await previous;
    }

    private async Task CommitGroupAsync(List<Request> group)
    {
        // Off the loop's own turn: the loop goes on to read the next group at once.
        await Task.Yield();
        foreach (var organization in group.GroupBy(r => r.OrganizationId))
        {
            await CommitAsync(organization.Key, organization.ToList());
        }
    }

    private async Task CommitAsync(long organizationId, List<Request> pending)
    {
        while (pending.Count > 0)
        {
            try
            {
                var results = await _store(organizationId, pending.SelectMany(r => r.Events).ToList());
                var offset = 0;
                foreach (var request in pending)
                {
                    request.Done.TrySetResult(results.Skip(offset).Take(request.Events.Count).ToList());
                    offset += request.Events.Count;
                }
                return;
            }
            catch (EventIdConflictException conflict)
            {
                // Nothing was stored: refuse the request that holds the conflicting event and
                // commit the rest again without it.
                var offset = 0;
                foreach (var request in pending)
                {
                    if (conflict.Index < offset + request.Events.Count)
                    {
                        request.Done.TrySetException(new EventIdConflictException(conflict.Index - offset, conflict.Existing));
                        pending.Remove(request);
                        break;
                    }
                    offset += request.Events.Count;
                }
            }
            catch (Exception) when (pending.Count > 1)
            {
                // Nothing was stored. Which request caused it is unknown: halve the group until
                // the failure is alone; a failure that is everyone's (the database is down) costs
                // a few more tries before each request gets it.
                var half = pending.Count / 2;
                await CommitAsync(organizationId, pending[..half]);
                await CommitAsync(organizationId, pending[half..]);
                return;
            }
            catch (Exception e)
            {
                _log.LogError(e, "Storing {Count} event request(s) failed", pending.Count);
                foreach (var request in pending)
                {
                    request.Done.TrySetException(e);
                }
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _requests.Writer.TryComplete();
        await _loop;
    }
}
