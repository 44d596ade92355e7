using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Postback.Catalog;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Infrastructure;
using Postback.Ingest;
using Postback.Notifications;
using Postback.Orders;
using Postback.Organizations;
using Postback.Retention;
using Postback.Storage;
using Postback.Storage.Postgres;
using Postback.Storage.Sqlite;
using Postback.Storage.Stores;
using Postback.Tests.Support;

namespace Postback.Tests.Storage;

/// One storage suite, run against every database Postback supports: the bug only one of them
/// has is what it exists to catch.
public abstract class StorageComplianceTests : IAsyncLifetime
{
    private readonly List<PostbackDb> _contexts = [];
    private string _connectionString = "";
    protected readonly FakeTimeProvider Time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    // As the hub has it: SQLite's writers take turns in-process, PostgreSQL's do not need to.
    protected WriteGate Gate => field ??= new WriteGate(serialize: this is SqliteStorageTests);

    protected abstract Task<string> CreateDatabaseAsync();

    protected abstract PostbackDb Open(string connectionString);

    protected abstract IDeliveryStore DeliveryStore(IServiceScopeFactory scopes, WriteGate gate);

    // The stores open a context per operation, as in the hub.
    protected IServiceScopeFactory Scopes => field ??= new ServiceCollection()
        .AddScoped(_ => Open(_connectionString)).BuildServiceProvider().GetRequiredService<IServiceScopeFactory>();

    protected IDeliveryStore Deliveries() => DeliveryStore(Scopes, Gate);

    protected abstract IngestStore IngestStore(WriteGate gate);

    protected IngestStore Ingest => field ??= IngestStore(Gate);

    protected static Lease Lease(string owner, DateTimeOffset now, TimeSpan lease) => new(owner, now, now + lease);

    public async Task InitializeAsync()
    {
        _connectionString = await CreateDatabaseAsync();
        await using var db = Open(_connectionString);
        await StorageMigrations.MigrateAsync(db);
        db.Organizations.AddRange(
            new Organization { Name = "A", CompanyId = 6316, CreatedAt = Time.GetUtcNow() },
            new Organization { Name = "B", CompanyId = 7000, CreatedAt = Time.GetUtcNow() });
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var db in _contexts)
        {
            await db.DisposeAsync();
        }
    }

    protected PostbackDb Db()
    {
        var db = Open(_connectionString);
        _contexts.Add(db);
        return db;
    }

    private static OrderData Order(string json) =>
        OrderParser.Parse(JsonDocument.Parse(json).RootElement).Order ?? throw new InvalidOperationException("bad test order");

    [Fact]
    public void The_migrations_cover_the_whole_model()
    {
        Assert.False(Db().Database.HasPendingModelChanges(), "the model changed without a migration for this provider");
    }

    [Fact]
    public async Task Ingesting_an_event_id_twice_stores_it_once()
    {
        var ingest = new EventIngest(Db(), Time, new DeliverySignal(), Ingest);
        var incoming = new IncomingEvent("evt-1", "new_sale", null, Order("""{"orderId": 1001, "firstName": "Jane"}"""));
        var first = await ingest.IngestAsync(1, [incoming], default);
        var second = await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [incoming], default);

        Assert.False(first[0].Duplicate);
        Assert.True(second[0].Duplicate);
        Assert.Equal(first[0].Event.Id, second[0].Event.Id);
        Assert.Equal(1, await Db().OrderEvents.CountAsync(e => e.EventId == "evt-1"));
    }

    [Fact]
    public async Task The_ingest_reads_find_an_organizations_own_events_orders_routing_profiles_recurring_products_and_campaign_names()
    {
        foreach (var organization in new long[] { 1, 2 })
        {
            await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(organization,
                [new IncomingEvent("evt-look", "new_sale", null, Order($$"""{"orderId": 1010, "firstName": "Org{{organization}}"}"""))], default);
        }
        var setup = Db();
        // No profile routes yet: neither products nor campaigns are read.
        var unrouted = await Ingest.ReadAsync(setup, 2, new IngestKeys([], [1010], ["P-REC"], ["259"]), default);
        Assert.Empty(unrouted.RecurringProducts);
        Assert.Empty(unrouted.CampaignNames);
        foreach (var organization in new long[] { 1, 2 })
        {
            setup.Campaigns.Add(new Campaign
            {
                OrganizationId = organization, CampaignId = "259", Name = $"Main {organization}", CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow(),
                Products =
                [
                    new Product { OrganizationId = organization, ProductId = "P-REC", Name = "Monthly", Recurring = organization == 2 },
                    new Product { OrganizationId = organization, ProductId = "P-ONE", Name = "Once" },
                ],
            });
        }
        setup.ExportProfiles.AddRange(
            new ExportProfile { OrganizationId = 2, Name = "second", PostbackUrl = "http://127.0.0.1:9/b", CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow() },
            new ExportProfile { OrganizationId = 2, Name = "first", PostbackUrl = "http://127.0.0.1:9/a", CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow() },
            new ExportProfile { OrganizationId = 2, Name = "off", PostbackUrl = "http://127.0.0.1:9/c", Enabled = false, CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow() },
            new ExportProfile { OrganizationId = 1, Name = "other", PostbackUrl = "http://127.0.0.1:9/d", CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow() });
        await setup.SaveChangesAsync();

        var db = Db();
        var reads = await Ingest.ReadAsync(db, 2, new IngestKeys(["evt-look", "EVT-LOOK", "evt-none"], [1010, 1011], ["P-REC", "P-ONE", "P-NONE"], ["259", "999"]), default);
        var found = Assert.Single(reads.Events);
        Assert.Equal("evt-look", found.Key);
        Assert.Equal(2, found.Value.OrganizationId);
        Assert.Equal(1010, found.Value.OrderId);
        Assert.Equal("new_sale", found.Value.Type);
        Assert.Equal(Time.GetUtcNow(), found.Value.ReceivedAt);

        var order = Assert.Single(reads.Orders);
        Assert.Equal(1010, order.Key);
        Assert.Equal("Org2", OrderJson.Deserialize(order.Value.Data).Get("firstName"));
        Assert.Equal(1, order.Value.Version);
        Assert.Equal(Time.GetUtcNow(), order.Value.CreatedAt);
        // Tracked: the ingest changes the orders it found and saves them.
        Assert.Equal(EntityState.Unchanged, db.Entry(order.Value).State);
        Assert.Empty(db.ChangeTracker.Entries<OrderEvent>());

        // The enabled profiles, by id; the products that are recurring in this organization; its
        // campaigns' names.
        Assert.Equal(["second", "first"], reads.Profiles.Select(p => p.Name));
        Assert.Equal(["P-REC"], reads.RecurringProducts);
        Assert.Equal("Main 2", Assert.Single(reads.CampaignNames, n => n.Key == "259").Value);
        Assert.Single(reads.CampaignNames);
        Assert.Empty((await Ingest.ReadAsync(Db(), 2, new IngestKeys([], [], [], []), default)).Events);
    }

    [Fact]
    public async Task The_ingest_reads_see_every_change_to_the_routing_profiles_made_since_the_last_read()
    {
        var keys = new IngestKeys([], [], [], []);
        async Task<List<string>> RoutingAsync() =>
            (await Ingest.ReadAsync(Db(), 1, keys, default)).Profiles.Select(p => $"{p.Name}:{string.Join(",", p.Mappings.Select(m => m.ExportName))}").ToList();
        Assert.Empty(await RoutingAsync());

        // Each change made through another context, as another process would.
        var db = Db();
        var first = new ExportProfile
        {
            OrganizationId = 1, Name = "first", PostbackUrl = "http://127.0.0.1:9/a", Mappings = [new("order_id", "orderId")],
            CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow(),
        };
        db.ExportProfiles.Add(first);
        await db.SaveChangesAsync();
        Assert.Equal(["first:order_id"], await RoutingAsync());
        Assert.Equal(["first:order_id"], await RoutingAsync());

        first.Mappings = [new("order_id", "orderId"), new("email", "emailAddress")];
        await db.SaveChangesAsync();
        Assert.Equal(["first:order_id,email"], await RoutingAsync());

        var second = new ExportProfile { OrganizationId = 1, Name = "second", PostbackUrl = "http://127.0.0.1:9/b", CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow() };
        db.ExportProfiles.Add(second);
        await db.SaveChangesAsync();
        Assert.Equal(["first:order_id,email", "second:"], await RoutingAsync());

        first.Enabled = false;
        await db.SaveChangesAsync();
        Assert.Equal(["second:"], await RoutingAsync());

        db.ExportProfiles.Remove(second);
        await db.SaveChangesAsync();
        Assert.Empty(await RoutingAsync());
    }

    [Fact]
    public async Task An_order_is_upserted_by_order_id_and_its_fields_merged()
    {
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1,
            [new IncomingEvent(null, "partial", null, Order("""{"orderId": 1002, "firstName": "Jane", "city": "Austin", "items": [{"sku": "A"}]}"""))], default);
        Time.Advance(TimeSpan.FromMinutes(3));
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1,
            [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 1002, "firstName": "Janet", "totalAmount": "49.9"}"""))], default);

        var rows = await Db().Orders.Where(o => o.OrderId == 1002).ToListAsync();
        var row = Assert.Single(rows);
        var data = OrderJson.Deserialize(row.Data);
        Assert.Equal("Janet", data.Get("firstName"));
        Assert.Equal("Austin", data.Get("city"));
        Assert.Equal("49.90", data.Get("totalAmount"));
        Assert.Equal("A", Assert.Single(data.Items).Sku);
        Assert.Equal(Time.GetUtcNow(), row.UpdatedAt);
        Assert.Equal(2, await Db().OrderEvents.CountAsync(e => e.OrderKey == row.Id));
    }

    [Fact]
    public async Task The_same_order_id_in_two_organizations_is_two_orders()
    {
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 1003, "firstName": "A"}"""))], default);
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(2, [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 1003, "firstName": "B"}"""))], default);

        var orders = await Db().Orders.Where(o => o.OrderId == 1003).OrderBy(o => o.OrganizationId).ToListAsync();
        Assert.Equal(["A", "B"], orders.Select(o => OrderJson.Deserialize(o.Data).Get("firstName")));
    }

    [Fact]
    public async Task Two_writers_racing_on_a_new_order_both_land_on_one_order()
    {
        var a = new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent("race-a", "partial", null, Order("""{"orderId": 1004, "firstName": "A"}"""))], default);
        var b = new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent("race-b", "partial", null, Order("""{"orderId": 1004, "lastName": "B"}"""))], default);
        await Task.WhenAll(a, b);

        Assert.Equal(1, await Db().Orders.CountAsync(o => o.OrderId == 1004));
        Assert.Equal(2, await Db().OrderEvents.CountAsync(e => e.OrderId == 1004));
    }

    [Fact]
    public async Task A_stale_order_write_is_refused_by_its_version()
    {
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent(null, "partial", null, Order("""{"orderId": 1007, "firstName": "A"}"""))], default);
        var stale = Db();
        var row = await stale.Orders.SingleAsync(o => o.OrderId == 1007);

        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 1007, "city": "Austin"}"""))], default);

        row.Data = "{}";
        row.Version++;
        await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => stale.SaveChangesAsync());
        Assert.Equal("Austin", OrderJson.Deserialize((await Db().Orders.SingleAsync(o => o.OrderId == 1007)).Data).Get("city"));
    }

    [Fact]
    public async Task The_ingest_store_refuses_an_order_changed_since_it_was_read_and_stores_nothing_of_that_ingest()
    {
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent(null, "partial", null, Order("""{"orderId": 1012, "firstName": "A"}"""))], default);
        var db = Db();
        var row = (await Ingest.ReadAsync(db, 1, new IngestKeys([], [1012], [], []), default)).Orders[1012];
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 1012, "city": "Austin"}"""))], default);

        row.Data = "{}";
        row.Version++;
        var now = Time.GetUtcNow();
        var stale = new OrderEvent { OrganizationId = 1, EventId = "evt-stale", Type = "upsell", Order = row, OrderId = 1012, OccurredAt = now, ReceivedAt = now };
        await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => Ingest.SaveAsync(db, [row], [stale], [], default));

        var stored = await Db().Orders.SingleAsync(o => o.OrderId == 1012);
        Assert.Equal(2, stored.Version);
        Assert.Equal("Austin", OrderJson.Deserialize(stored.Data).Get("city"));
        Assert.False(await Db().OrderEvents.AnyAsync(e => e.EventId == "evt-stale"));
    }

    [Fact]
    public async Task An_ingest_save_refused_on_one_table_stores_nothing_on_the_others()
    {
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent("evt-taken", "partial", null, Order("""{"orderId": 1013}"""))], default);
        var now = Time.GetUtcNow();
        var order = new StoredOrder { OrganizationId = 1, OrderId = 1014, Data = "{}", Version = 1, CreatedAt = now, UpdatedAt = now };
        var taken = new OrderEvent { OrganizationId = 1, EventId = "evt-taken", Type = "new_sale", Order = order, OrderId = 1014, OccurredAt = now, ReceivedAt = now };

        await Assert.ThrowsAnyAsync<DbUpdateException>(() => Ingest.SaveAsync(Db(), [order], [taken], [], default));

        Assert.False(await Db().Orders.AnyAsync(o => o.OrderId == 1014));
        Assert.Equal(1, await Db().OrderEvents.CountAsync(e => e.EventId == "evt-taken"));
    }

    [Fact]
    public async Task Concurrent_postbacks_for_one_order_lost_each_others_fields()
    {
        await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1, [new IncomingEvent(null, "partial", null, Order("""{"orderId": 1008}"""))], default);
        var fields = new[] { "firstName", "lastName", "city", "state" };
        await Task.WhenAll(fields.Select(f => new EventIngest(Db(), Time, new DeliverySignal(), Ingest)
            .IngestAsync(1, [new IncomingEvent(null, "new_sale", null, Order($$"""{"orderId": 1008, "{{f}}": "{{f}}-value"}"""))], default)));

        var order = OrderJson.Deserialize((await Db().Orders.SingleAsync(o => o.OrderId == 1008)).Data);
        Assert.All(fields, f => Assert.Equal($"{f}-value", order.Get(f)));
        Assert.Equal(5, await Db().OrderEvents.CountAsync(e => e.OrderId == 1008));
    }

    [Fact]
    public async Task A_duplicate_order_row_is_refused_by_the_database()
    {
        var db = Db();
        db.Orders.Add(new StoredOrder { OrganizationId = 1, OrderId = 1005, Data = "{}" });
        db.Orders.Add(new StoredOrder { OrganizationId = 1, OrderId = 1005, Data = "{}" });
        await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
        Assert.Equal(0, await Db().Orders.CountAsync(o => o.OrderId == 1005));
    }

    [Fact]
    public async Task Profile_mappings_and_routes_round_trip()
    {
        var db = Db();
        var profile = new ExportProfile
        {
            OrganizationId = 1,
            Name = "Call center partials",
            PostbackUrl = "https://postingmydata.com/partials.php",
            ExportDelayMinutes = 5,
            Mappings = [new("first_name", "firstName"), new("list_id", null, "400"), new("header:X-Note", null, "José ✓ \"quoted\"")],
            Routes = [new(["partial", "new_sale"], ["259"], [])],
        };
        db.ExportProfiles.Add(profile);
        await db.SaveChangesAsync();

        var loaded = await Db().ExportProfiles.SingleAsync(p => p.Id == profile.Id);
        Assert.Equal(profile.Mappings, loaded.Mappings);
        Assert.Equal(["partial", "new_sale"], loaded.Routes[0].CustomerTypes);
        Assert.Equal(["259"], loaded.Routes[0].CampaignIds!);

        // A change inside the JSON column is seen by change tracking.
        loaded.Mappings.Add(new ExportMapping("email_address", "emailAddress"));
        var tracked = (PostbackDb)_contexts[^1];
        await tracked.SaveChangesAsync();
        Assert.Equal(4, (await Db().ExportProfiles.SingleAsync(p => p.Id == profile.Id)).Mappings.Count);
    }

    [Fact]
    public async Task Times_round_trip_to_the_microsecond_and_compare_in_queries()
    {
        var early = new DateTimeOffset(2026, 1, 1, 8, 30, 15, 123, TimeSpan.Zero).AddTicks(4567);
        var late = early.AddMinutes(5);
        await new EventIngest(Db(), new FakeTimeProvider(early), new DeliverySignal(), Ingest).IngestAsync(1,
            [new IncomingEvent("t-early", "partial", early, Order("""{"orderId": 1006}""")),
             new IncomingEvent("t-late", "partial", late.ToOffset(TimeSpan.FromHours(2)), Order("""{"orderId": 1006}"""))], default);

        var found = await Db().OrderEvents.Where(e => e.OrderId == 1006 && e.OccurredAt < early.AddMinutes(1)).ToListAsync();
        var single = Assert.Single(found);
        Assert.Equal("t-early", single.EventId);
        Assert.Equal(early.AddTicks(-7), single.OccurredAt);
        Assert.Equal(late.AddTicks(-7), (await Db().OrderEvents.SingleAsync(e => e.EventId == "t-late")).OccurredAt);
        Assert.Equal(TimeSpan.Zero, single.OccurredAt.Offset);
    }

    [Fact]
    public async Task Deleting_a_campaign_deletes_its_products_and_prices_keep_their_precision()
    {
        var db = Db();
        var campaign = new Campaign
        {
            OrganizationId = 1,
            CampaignId = "259",
            Name = "Test Lander",
            Products = [new Product { OrganizationId = 1, ProductId = "12", Sku = "SKU-12", Name = "Trial", Price = 4.9595m, Recurring = true }],
        };
        db.Campaigns.Add(campaign);
        await db.SaveChangesAsync();

        var product = await Db().Products.SingleAsync(p => p.CampaignKey == campaign.Id);
        Assert.Equal(4.9595m, product.Price);
        Assert.True(product.Recurring);

        var deleting = Db();
        deleting.Campaigns.Remove(await deleting.Campaigns.SingleAsync(c => c.Id == campaign.Id));
        await deleting.SaveChangesAsync();
        Assert.Equal(0, await Db().Products.CountAsync(p => p.CampaignKey == campaign.Id));
    }

    private async Task<(long ProfileId, IngestedEvent Event)> ScheduleAsync(int delayMinutes, long orderId)
    {
        var db = Db();
        var profile = new ExportProfile
        {
            OrganizationId = 1,
            Name = "queue",
            PostbackUrl = "http://127.0.0.1:9/hook",
            ExportDelayMinutes = delayMinutes,
            Routes = [new(["new_sale"])],
        };
        db.ExportProfiles.Add(profile);
        await db.SaveChangesAsync();
        var ingested = await new EventIngest(Db(), Time, new DeliverySignal(), Ingest).IngestAsync(1,
            [new IncomingEvent(null, "new_sale", null, Order($$"""{"orderId": {{orderId}}, "customerId": "C-{{orderId}}"}"""))], default);
        return (profile.Id, ingested[0]);
    }

    [Fact]
    public async Task A_delivery_is_due_after_the_export_delay_and_claimed_once_per_lease()
    {
        var (profileId, ingested) = await ScheduleAsync(delayMinutes: 5, orderId: 2001);
        var scheduled = Assert.Single(ingested.Deliveries);
        Assert.Equal(profileId, scheduled.ProfileId);
        Assert.Equal(Time.GetUtcNow().AddMinutes(5), scheduled.DueAt);
        // The outbox: the delivery was written with its event.
        Assert.Equal(ingested.Event.Id, (await Db().Deliveries.SingleAsync(d => d.Id == scheduled.Id)).EventKey);

        var lease = TimeSpan.FromSeconds(30);
        var queue = Deliveries();
        Time.Advance(TimeSpan.FromMinutes(4));
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 100, [], default));

        Time.Advance(TimeSpan.FromMinutes(1));
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 100, [], default));
        Assert.Equal(scheduled.Id, claimed.Id);
        Assert.Equal("C-2001", claimed.CustomerId);
        Assert.Equal("http://127.0.0.1:9", claimed.Endpoint);
        Assert.Equal(scheduled.DueAt, claimed.FirstDueAt);

        // Held by w1: nobody else gets it, not even w1 again.
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, [], default));
        // Its endpoint blocked: not claimed either.
        Time.Advance(lease + TimeSpan.FromSeconds(1));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, ["http://127.0.0.1:9"], default));

        // w1 died: once its lease ran out, the delivery comes back to another worker.
        var reclaimed = Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, [], default));
        Assert.Equal(scheduled.Id, reclaimed.Id);

        // w1's late outcome does not overwrite w2's lease, and leaves no attempt nor history
        // line behind; w2's does.
        var lateAttempt = new DeliveryAttempt
        {
            DeliveryId = claimed.Id, OrganizationId = 1, Number = 1, StartedAt = Time.GetUtcNow(), DurationMs = 3,
            RequestMethod = "GET", RequestUrl = "http://127.0.0.1:9/hook", RequestHeaders = "[]", Error = "late",
        };
        Assert.Empty(await queue.CompleteAsync("w1", [new DeliveryOutcome(claimed, DeliveryStatus.Failed, null, lateAttempt, "late", null)], Time.GetUtcNow(), default));
        Assert.Equal(DeliveryStatus.Pending, (await Db().Deliveries.SingleAsync(d => d.Id == scheduled.Id)).Status);
        Assert.False(await Db().DeliveryAttempts.AnyAsync(a => a.DeliveryId == scheduled.Id));
        Assert.False(await Db().History.AnyAsync(h => h.DeliveryId == scheduled.Id));
        var recorded = await queue.CompleteAsync("w2", [new DeliveryOutcome(reclaimed, DeliveryStatus.Succeeded, null, null, null, 200)], Time.GetUtcNow(), default);
        Assert.Equal([scheduled.Id], recorded);
        var done = await Db().Deliveries.SingleAsync(d => d.Id == scheduled.Id);
        Assert.Equal(DeliveryStatus.Succeeded, done.Status);
        Assert.Null(done.LeaseOwner);
        Assert.Equal(Time.GetUtcNow(), done.CompletedAt);
    }

    [Fact]
    public async Task A_delivery_handed_over_at_ingest_is_stored_leased_to_the_worker_and_comes_back_when_the_lease_runs_out()
    {
        var db = Db();
        db.ExportProfiles.AddRange(
            new ExportProfile { OrganizationId = 1, Name = "now", PostbackUrl = "http://127.0.0.1:9/now", Routes = [new(["new_sale"])] },
            new ExportProfile { OrganizationId = 1, Name = "later", PostbackUrl = "http://127.0.0.1:9/later", ExportDelayMinutes = 5, Routes = [new(["new_sale"])] },
            new ExportProfile
            {
                OrganizationId = 1, Name = "in order", PostbackUrl = "http://127.0.0.1:9/ordered", Ordering = ProfileOrdering.PerOrder,
                Routes = [new(["new_sale"])],
            });
        await db.SaveChangesAsync();

        // A running worker whose work holds each handed-over delivery in flight until the end.
        var lease = TimeSpan.FromSeconds(30);
        var work = new HoldingWork();
        var signal = new DeliverySignal();
        var queue = new LeaseQueue<ClaimedDelivery, DeliveryOutcome>(
            new LeaseQueueSettings { Work = "test", MaxInFlight = 8, ClaimBatch = 8, Lease = lease, Poll = TimeSpan.FromHours(1) },
            new NoClaims(Deliveries()), work, signal, Time, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        signal.Attach(queue, new EndpointHealth(3, 100));
        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync(stop.Token);
        await DeliveryScenario.WaitUntilAsync(() => Task.FromResult(signal.Reserve(1) == 1), TimeSpan.FromSeconds(30), () => "the queue never started");
        signal.Unreserve(1);

        var ingested = await new EventIngest(Db(), Time, signal, Ingest).IngestAsync(1,
            [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 2101, "customerId": "C-2101"}"""))], default);
        var handed = Assert.Single(await work.Dispatched.Task);
        var scheduled = ingested[0].Deliveries.ToDictionary(d => d.ProfileName);
        Assert.Equal(3, scheduled.Count);
        Assert.Equal(scheduled["now"].Id, handed.Id);
        Assert.Equal("C-2101", handed.CustomerId);
        Assert.Equal("http://127.0.0.1:9", handed.Endpoint);
        Assert.Equal(0, handed.Attempts);

        // Stored leased to the worker in the ingest's own transaction; the delayed and the
        // ordered deliveries are left to the claim.
        var rows = await Db().Deliveries.AsNoTracking().Where(d => d.EventKey == ingested[0].Event.Id).ToDictionaryAsync(d => d.Id);
        Assert.Equal(queue.Owner, rows[scheduled["now"].Id].LeaseOwner);
        Assert.Equal(Time.GetUtcNow() + lease, rows[scheduled["now"].Id].LeaseUntil);
        Assert.Null(rows[scheduled["later"].Id].LeaseOwner);
        Assert.Null(rows[scheduled["in order"].Id].LeaseOwner);

        // Nobody else claims it while the lease holds (the ordered one is due and free); after
        // the worker died, it comes back like any claimed delivery.
        var store = Deliveries();
        var claimed = Assert.Single(await store.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, [], default));
        Assert.Equal(scheduled["in order"].Id, claimed.Id);
        Time.Advance(lease + TimeSpan.FromSeconds(1));
        Assert.Contains(scheduled["now"].Id, (await store.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, [], default)).Select(c => c.Id));

        work.Release.SetResult();
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_failed_ingest_gives_its_reservation_back_and_leaves_nothing_leased()
    {
        var db = Db();
        db.ExportProfiles.Add(new ExportProfile { OrganizationId = 1, Name = "now", PostbackUrl = "http://127.0.0.1:9/now", Routes = [new(["new_sale"])] });
        await db.SaveChangesAsync();
        var signal = new DeliverySignal();
        var queue = new LeaseQueue<ClaimedDelivery, DeliveryOutcome>(
            new LeaseQueueSettings { Work = "test", MaxInFlight = 8, ClaimBatch = 8, Lease = TimeSpan.FromSeconds(30), Poll = TimeSpan.FromHours(1) },
            new NoClaims(Deliveries()), new HoldingWork(), signal, Time, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        signal.Attach(queue, new EndpointHealth(3, 100));
        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync(stop.Token);
        await DeliveryScenario.WaitUntilAsync(() => Task.FromResult(signal.Reserve(1) == 1), TimeSpan.FromSeconds(30), () => "the queue never started");
        signal.Unreserve(1);

        var failing = new FailingSave(Ingest);
        await Assert.ThrowsAsync<InvalidOperationException>(() => new EventIngest(Db(), Time, signal, failing).IngestAsync(1,
            [new IncomingEvent(null, "new_sale", null, Order("""{"orderId": 2102}"""))], default));
        Assert.True(failing.Leased > 0, "the ingest never asked to store a leased delivery");
        Assert.Equal(8, signal.Reserve(8));
        signal.Unreserve(8);
        Assert.False(await Db().Deliveries.AnyAsync(d => d.OrderId == 2102));

        await stop.CancelAsync();
        await running;
    }

    // Refuses every save, after noting how many deliveries it was given leased.
    private sealed class FailingSave(IIngestStore inner) : IIngestStore
    {
        public int Leased;

        public Task<IngestReads> ReadAsync(PostbackDb db, long organizationId, IngestKeys keys, CancellationToken ct) =>
            inner.ReadAsync(db, organizationId, keys, ct);

        public Task<IReadOnlyList<string>> StageInboundAsync(
            PostbackDb db, long organizationId, InboundPostback inbound, IngestedEvent result, HashSet<string> staged, CancellationToken ct) =>
            inner.StageInboundAsync(db, organizationId, inbound, result, staged, ct);

        public Task SaveAsync(
            PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
        {
            Leased += deliveries.Count(d => d.LeaseOwner is not null);
            throw new InvalidOperationException("the database refused the ingest");
        }
    }

    // Holds every job it is given until Release; records the first batch handed to it.
    private sealed class HoldingWork : ILeaseWork<ClaimedDelivery, DeliveryOutcome>
    {
        public readonly TaskCompletionSource<IReadOnlyList<ClaimedDelivery>> Dispatched = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task DispatchAsync(IReadOnlyList<ClaimedDelivery> claimed, LeaseDispatch<DeliveryOutcome> dispatch, CancellationToken ct)
        {
            Dispatched.TrySetResult(claimed);
            foreach (var delivery in claimed)
            {
                await dispatch.StartAsync(delivery.Id, async _ =>
                {
                    await Release.Task;
                    return null;
                });
            }
        }
    }

    // The queue's own claim finds nothing: the test claims as another worker itself.
    private sealed class NoClaims(IDeliveryStore store) : ILeaseStore<ClaimedDelivery, DeliveryOutcome>
    {
        public Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(Lease lease, int limit, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<ClaimedDelivery>>([]);

        public Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct) =>
            store.CompleteAsync(owner, outcomes, now, ct);

        public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => store.ReleaseAsync(owner, ids, ct);
    }

    [Fact]
    public async Task Outcomes_record_the_attempt_the_retry_time_and_the_customer_history()
    {
        await ScheduleAsync(delayMinutes: 0, orderId: 2002);
        var queue = Deliveries();
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), TimeSpan.FromSeconds(30)), 100, [], default));
        var attempt = new DeliveryAttempt
        {
            DeliveryId = claimed.Id, OrganizationId = 1, Number = 1, StartedAt = Time.GetUtcNow(), DurationMs = 12.5,
            RequestMethod = "GET", RequestUrl = "http://127.0.0.1:9/hook?a=1", RequestHeaders = "[]", ResponseStatus = 503, Error = null,
        };
        var retryAt = Time.GetUtcNow().AddSeconds(2);
        await queue.CompleteAsync("w1", [new DeliveryOutcome(claimed, DeliveryStatus.Pending, retryAt, attempt, "the receiver answered 503", 503)], Time.GetUtcNow(), default);

        var delivery = await Db().Deliveries.SingleAsync(d => d.Id == claimed.Id);
        Assert.Equal(DeliveryStatus.Pending, delivery.Status);
        Assert.Equal(retryAt, delivery.DueAt);
        Assert.Equal(1, delivery.Attempts);
        Assert.Equal(503, delivery.LastStatusCode);
        Assert.Equal("the receiver answered 503", delivery.LastError);
        Assert.Null(delivery.CompletedAt);
        var stored = await Db().DeliveryAttempts.SingleAsync(a => a.DeliveryId == claimed.Id);
        Assert.Equal(12.5, stored.DurationMs);
        Assert.Equal(attempt.StartedAt, stored.StartedAt);
        Assert.Equal(("GET", "http://127.0.0.1:9/hook?a=1", "[]"), (stored.RequestMethod, stored.RequestUrl, stored.RequestHeaders));
        Assert.Equal((503, (string?)null, (string?)null, false), (stored.ResponseStatus, stored.ResponseBody, stored.RequestBody, stored.Succeeded));
        Assert.Equal((1L, 1), (stored.OrganizationId, stored.Number));
        var history = await Db().History.SingleAsync(h => h.DeliveryId == claimed.Id);
        Assert.Equal("C-2002", history.CustomerId);
        Assert.Equal("export", history.Kind);
        Assert.Equal(2002, history.OrderId);
        Assert.Equal(claimed.ProfileId, history.ProfileId);
        Assert.Equal(attempt.StartedAt, history.CreatedAt);
        Assert.StartsWith("Export fired (", history.Message);

        // Not due before its retry time.
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow().AddSeconds(1), TimeSpan.FromSeconds(30)), 100, [], default));
        Assert.Single(await queue.ClaimAsync(Lease("w1", retryAt, TimeSpan.FromSeconds(30)), 100, [], default));
    }

    [Fact]
    public async Task A_batch_of_outcomes_records_attempts_and_history_only_where_the_lease_is_still_the_workers()
    {
        await ScheduleAsync(delayMinutes: 0, orderId: 2010);
        await ScheduleAsync(delayMinutes: 0, orderId: 2011);
        var queue = Deliveries();
        var lease = TimeSpan.FromSeconds(30);
        var claimed = (await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 100, [], default)).OrderBy(c => c.Id).ToList();
        Assert.Equal(3, claimed.Count);
        // w1 stalls past its lease; w2 takes the oldest over.
        Time.Advance(lease + TimeSpan.FromSeconds(1));
        var taken = Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 1, [], default));
        Assert.Equal(claimed[0].Id, taken.Id);

        DeliveryAttempt Attempt(ClaimedDelivery c) => new()
        {
            DeliveryId = c.Id, OrganizationId = 1, Number = 1, StartedAt = Time.GetUtcNow(), DurationMs = 3,
            RequestMethod = "GET", RequestUrl = "http://127.0.0.1:9/hook", RequestHeaders = "[]", ResponseStatus = 200, Succeeded = true,
        };
        var recorded = await queue.CompleteAsync("w1",
        [
            new DeliveryOutcome(claimed[0], DeliveryStatus.Succeeded, null, Attempt(claimed[0]), null, 200),
            new DeliveryOutcome(claimed[1], DeliveryStatus.Succeeded, null, Attempt(claimed[1]), null, 200),
            new DeliveryOutcome(claimed[2], DeliveryStatus.Cancelled, null, null, "the export profile is disabled", null),
        ], Time.GetUtcNow(), default);

        Assert.Equal([claimed[1].Id, claimed[2].Id], recorded.Order());
        var rows = await Db().Deliveries.Where(d => claimed.Select(c => c.Id).Contains(d.Id)).OrderBy(d => d.Id).ToListAsync();
        Assert.Equal([DeliveryStatus.Pending, DeliveryStatus.Succeeded, DeliveryStatus.Cancelled], rows.Select(d => d.Status));
        Assert.Equal("w2", rows[0].LeaseOwner);
        Assert.Equal([0, 1, 0], rows.Select(d => d.Attempts));
        Assert.Equal([claimed[1].Id], await Db().DeliveryAttempts.Where(a => claimed.Select(c => c.Id).Contains(a.DeliveryId)).Select(a => a.DeliveryId).ToListAsync());
        Assert.Equal([claimed[1].Id], await Db().History.Where(h => h.OrderId == 2010 || h.OrderId == 2011).Select(h => h.DeliveryId!.Value).ToListAsync());
    }

    [Fact]
    public async Task A_released_delivery_is_due_again_at_once_for_any_worker()
    {
        await ScheduleAsync(delayMinutes: 0, orderId: 2003);
        var queue = Deliveries();
        var lease = TimeSpan.FromSeconds(30);
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 100, [], default));
        // Only the holder can give it back.
        await queue.ReleaseAsync("w2", [claimed.Id], default);
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, [], default));
        await queue.ReleaseAsync("w1", [claimed.Id], default);
        var again = Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 100, [], default));
        Assert.Equal((claimed.Id, 0), (again.Id, again.Attempts));
    }

    private async Task<OrderConfirmation> ConfirmationAsync(long orderId, DateTimeOffset dueAt)
    {
        var db = Db();
        var order = new StoredOrder { OrganizationId = 1, OrderId = orderId, Data = "{}", Version = 1, CreatedAt = Time.GetUtcNow(), UpdatedAt = Time.GetUtcNow() };
        db.Orders.Add(order);
        await db.SaveChangesAsync();
        var confirmation = new OrderConfirmation
        {
            OrganizationId = 1, OrderKey = order.Id, OrderId = orderId, CustomerId = "C-" + orderId, DueAt = dueAt, RequestedAt = Time.GetUtcNow(),
        };
        db.Confirmations.Add(confirmation);
        await db.SaveChangesAsync();
        return confirmation;
    }

    private ConfirmationOutcome Confirmed(ClaimedConfirmation claimed, OrderConfirmation row, string message) =>
        new(claimed,
            new OrderConfirmation
            {
                Id = row.Id, OrganizationId = 1, OrderKey = row.OrderKey, OrderId = row.OrderId, Status = ConfirmationStatus.Confirmed, Round = claimed.Round,
                Attempts = claimed.Attempts + 1, DueAt = row.DueAt, Message = message, LastStatusCode = 200, LastAttemptAt = Time.GetUtcNow(),
                RequestedAt = row.RequestedAt, CompletedAt = Time.GetUtcNow(),
            },
            new ConfirmationAttempt
            {
                ConfirmationId = row.Id, OrganizationId = 1, Round = claimed.Round, Number = claimed.Attempts + 1, StartedAt = Time.GetUtcNow(),
                RequestMethod = "POST", RequestUrl = "http://127.0.0.1:9/confirm", RequestHeaders = "[]", Succeeded = true,
            },
            new HistoryEntry { OrganizationId = 1, OrderId = row.OrderId, Kind = "confirmation", Message = message, CreatedAt = Time.GetUtcNow() },
            [new OutboxEmail { OrganizationId = 1, DedupKey = $"c{row.Id}-{message}", Recipient = "ops@example.com", Subject = "s", Body = "b", DueAt = Time.GetUtcNow(), CreatedAt = Time.GetUtcNow() }]);

    [Fact]
    public async Task A_confirmation_is_due_at_its_time_claimed_once_per_lease_and_a_dead_workers_outcome_is_ignored()
    {
        var row = await ConfirmationAsync(3001, Time.GetUtcNow().AddMinutes(1));
        var queue = new ConfirmationStore(Scopes, Gate);
        var lease = TimeSpan.FromSeconds(30);
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));

        Time.Advance(TimeSpan.FromMinutes(1));
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));
        Assert.Equal((row.Id, 1, 0), (claimed.Id, claimed.Round, claimed.Attempts));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 10, default));

        // w1 died: once its lease ran out, the confirmation comes back to another worker.
        Time.Advance(lease + TimeSpan.FromSeconds(1));
        var reclaimed = Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 10, default));

        // w1's late outcome leaves no trace: no state, attempt, history line nor alert.
        Assert.Empty(await queue.CompleteAsync("w1", [Confirmed(claimed, row, "late")], Time.GetUtcNow(), default));
        var after = await Db().Confirmations.SingleAsync(c => c.Id == row.Id);
        Assert.Equal((ConfirmationStatus.Pending, "w2"), (after.Status, after.LeaseOwner));
        Assert.False(await Db().ConfirmationAttempts.AnyAsync(a => a.ConfirmationId == row.Id));
        Assert.False(await Db().History.AnyAsync(h => h.OrderId == 3001));
        Assert.False(await Db().EmailOutbox.AnyAsync(m => m.DedupKey == $"c{row.Id}-late"));

        Assert.Equal([row.Id], await queue.CompleteAsync("w2", [Confirmed(reclaimed, row, "ok")], Time.GetUtcNow(), default));
        var done = await Db().Confirmations.SingleAsync(c => c.Id == row.Id);
        Assert.Equal((ConfirmationStatus.Confirmed, (string?)null, (DateTimeOffset?)null, 1, "ok"), (done.Status, done.LeaseOwner, done.LeaseUntil, done.Attempts, done.Message));
        Assert.Equal(Time.GetUtcNow(), done.CompletedAt);
        Assert.Single(await Db().ConfirmationAttempts.Where(a => a.ConfirmationId == row.Id).ToListAsync());
        Assert.Single(await Db().History.Where(h => h.OrderId == 3001).ToListAsync());
        Assert.Single(await Db().EmailOutbox.Where(m => m.DedupKey == $"c{row.Id}-ok").ToListAsync());
        // Finished: never claimed again.
        Time.Advance(TimeSpan.FromHours(1));
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));
    }

    [Fact]
    public async Task An_outcome_for_an_earlier_round_of_a_confirmation_is_ignored_and_a_release_frees_it()
    {
        var row = await ConfirmationAsync(3002, Time.GetUtcNow());
        var queue = new ConfirmationStore(Scopes, Gate);
        var lease = TimeSpan.FromSeconds(30);
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));
        await queue.ReleaseAsync("w1", [claimed.Id], default);
        claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));

        // An operator reconfirms meanwhile: a new round, same holder.
        await Db().Confirmations.Where(c => c.Id == row.Id).ExecuteUpdateAsync(s => s.SetProperty(c => c.Round, 2));
        Assert.Empty(await queue.CompleteAsync("w1", [Confirmed(claimed, row, "old round")], Time.GetUtcNow(), default));
        Assert.Equal(ConfirmationStatus.Pending, (await Db().Confirmations.SingleAsync(c => c.Id == row.Id)).Status);
    }

    private async Task<OutboxEmail> EmailAsync(string key, DateTimeOffset dueAt)
    {
        var db = Db();
        var email = new OutboxEmail { OrganizationId = 1, DedupKey = key, Recipient = "ops@example.com", Subject = "s", Body = "b", DueAt = dueAt, CreatedAt = Time.GetUtcNow() };
        db.EmailOutbox.Add(email);
        await db.SaveChangesAsync();
        return email;
    }

    [Fact]
    public async Task An_email_is_due_at_its_time_renewed_only_by_its_holder_and_a_dead_senders_mark_is_ignored()
    {
        var row = await EmailAsync("m-1", Time.GetUtcNow().AddSeconds(10));
        var queue = new EmailOutboxStore(Scopes, Gate);
        var lease = TimeSpan.FromSeconds(30);
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));
        Time.Advance(TimeSpan.FromSeconds(10));
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));
        Assert.Equal(("m-1", "ops@example.com"), (claimed.DedupKey, claimed.Recipient));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 10, default));

        // A renewal keeps it w1's past the first lease.
        Time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal([row.Id], await queue.RenewAsync(Lease("w1", Time.GetUtcNow(), lease), [row.Id], default));
        Assert.Empty(await queue.RenewAsync(Lease("w2", Time.GetUtcNow(), lease), [row.Id], default));
        Time.Advance(TimeSpan.FromSeconds(20));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 10, default));

        // w1 died: its lease runs out, w2 takes over, and w1 can neither renew nor mark it.
        Time.Advance(lease);
        Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 10, default));
        Assert.Empty(await queue.RenewAsync(Lease("w1", Time.GetUtcNow(), lease), [row.Id], default));
        Assert.Empty(await queue.CompleteAsync("w1", [new EmailOutcome(row.Id, EmailStatus.Rejected, "late", null)], Time.GetUtcNow(), default));
        var untouched = await Db().EmailOutbox.SingleAsync(m => m.Id == row.Id);
        Assert.Equal((EmailStatus.Pending, 0, "w2"), (untouched.Status, untouched.Attempts, untouched.LeaseOwner));

        Assert.Equal([row.Id], await queue.CompleteAsync("w2", [new EmailOutcome(row.Id, EmailStatus.Sent, null, null)], Time.GetUtcNow(), default));
        var sent = await Db().EmailOutbox.SingleAsync(m => m.Id == row.Id);
        Assert.Equal((EmailStatus.Sent, 1, (string?)null), (sent.Status, sent.Attempts, sent.LeaseOwner));
        Assert.Equal(Time.GetUtcNow(), sent.SentAt);
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow().AddHours(1), lease), 10, default));
    }

    [Fact]
    public async Task An_email_that_could_not_be_sent_is_due_again_at_its_retry_time_with_its_error_clipped()
    {
        var row = await EmailAsync("m-2", Time.GetUtcNow());
        var queue = new EmailOutboxStore(Scopes, Gate);
        var lease = TimeSpan.FromSeconds(30);
        Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 10, default));
        var retryAt = Time.GetUtcNow().AddSeconds(5);
        // A reply far longer than the column, its cut falling inside a surrogate pair.
        var error = new string('x', 988) + "😀😀😀";
        Assert.Equal([row.Id], await queue.CompleteAsync("w1", [new EmailOutcome(row.Id, EmailStatus.Pending, error, retryAt)], Time.GetUtcNow(), default));

        var stored = await Db().EmailOutbox.SingleAsync(m => m.Id == row.Id);
        Assert.Equal((EmailStatus.Pending, 1, retryAt, (string?)null), (stored.Status, stored.Attempts, stored.DueAt, stored.LeaseOwner));
        Assert.Equal(new string('x', 988) + "…", stored.LastError);
        Assert.Empty(await queue.ClaimAsync(Lease("w1", retryAt.AddSeconds(-1), lease), 10, default));
        Assert.Single(await queue.ClaimAsync(Lease("w2", retryAt, lease), 10, default));
    }

    [Fact]
    public async Task The_retention_job_is_due_after_its_interval_held_by_one_worker_and_a_dead_workers_end_is_ignored()
    {
        var interval = TimeSpan.FromMinutes(10);
        var queue = new JobLeaseStore(Scopes, Gate, "retention-sweep", interval);
        var lease = TimeSpan.FromMinutes(2);
        // Never run: due at once, for one worker.
        var run = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 1, default));
        Assert.Equal("retention-sweep", run.Name);
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 1, default));
        Assert.False(await queue.TakeNowAsync(Lease("w2", Time.GetUtcNow(), lease), default));

        // A renewal keeps it w1's past the first lease; only the holder renews.
        Time.Advance(TimeSpan.FromSeconds(90));
        Assert.Equal([1L], await queue.RenewAsync(Lease("w1", Time.GetUtcNow(), lease), [1], default));
        Assert.Empty(await queue.RenewAsync(Lease("w2", Time.GetUtcNow(), lease), [1], default));
        Time.Advance(TimeSpan.FromSeconds(90));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 1, default));

        // w1 died: once its lease ran out, w2 takes the job over, and w1 can neither renew nor end it.
        Time.Advance(lease);
        Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 1, default));
        Assert.Empty(await queue.RenewAsync(Lease("w1", Time.GetUtcNow(), lease), [1], default));
        Assert.Empty(await queue.CompleteAsync("w1", [run], Time.GetUtcNow(), default));
        Assert.Equal("w2", (await Db().JobLeases.SingleAsync(l => l.Name == "retention-sweep")).Owner);

        // w2 finishes: the job is free and due one interval later, not before.
        var endedAt = Time.GetUtcNow();
        Assert.Equal([1L], await queue.CompleteAsync("w2", [run], endedAt, default));
        var row = await Db().JobLeases.SingleAsync(l => l.Name == "retention-sweep");
        Assert.Equal(((string?)null, (DateTimeOffset?)(endedAt + interval)), (row.Owner, row.Until));
        Time.Advance(interval - TimeSpan.FromSeconds(1));
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 1, default));
        Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 1, default));

        // Given back unfinished (a stopping process): due at once for any worker. A run asked
        // for explicitly takes it whenever no one holds it, due or not.
        await queue.ReleaseAsync("w1", [1], default);
        Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 1, default));
        Assert.Equal([1L], await queue.CompleteAsync("w2", [run], Time.GetUtcNow(), default));
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 1, default));
        Assert.True(await queue.TakeNowAsync(Lease("w1", Time.GetUtcNow(), lease), default));
    }

    private async Task<FileRun> FileRunAsync(string day, DateTimeOffset dueAt)
    {
        var db = Db();
        var profile = new ExportProfile
        {
            OrganizationId = 1,
            Name = "files " + day,
            PostbackUrl = "http://127.0.0.1:9/unused",
            Routes = [new(["new_sale"])],
        };
        db.ExportProfiles.Add(profile);
        await db.SaveChangesAsync();
        var run = FileRunSchedule.NewRun(profile, 0, day, "schedule", dueAt, Time.GetUtcNow());
        db.FileRuns.Add(run);
        await db.SaveChangesAsync();
        return run;
    }

    private static FileRunOutcome Uploaded(FileRun run, string name) => new(run, new RunResult(3, [1, 2, 3], name, null), null, "files");

    [Fact]
    public async Task A_file_run_is_due_at_its_time_claimed_once_per_lease_and_a_dead_workers_outcome_is_ignored()
    {
        var row = await FileRunAsync("2026-11-21", Time.GetUtcNow().AddMinutes(1));
        var queue = new FileRunLeaseStore(Scopes, Gate);
        var lease = TimeSpan.FromSeconds(30);
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 4, default));

        Time.Advance(TimeSpan.FromMinutes(1));
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 4, default));
        // A claim is an attempt.
        Assert.Equal((row.Id, 1, "w1"), (claimed.Id, claimed.Attempts, claimed.LeaseOwner));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 4, default));

        // A renewal keeps it w1's past the first lease; only the holder renews.
        Time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal([row.Id], await queue.RenewAsync(Lease("w1", Time.GetUtcNow(), lease), [row.Id], default));
        Assert.Empty(await queue.RenewAsync(Lease("w2", Time.GetUtcNow(), lease), [row.Id], default));
        Time.Advance(TimeSpan.FromSeconds(20));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 4, default));

        // A lease that ran out while w1's upload goes on: w1's own claim takes it again without
        // counting another attempt (its engine leaves it to the upload under way).
        Time.Advance(lease);
        Assert.Equal(1, Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 4, default)).Attempts);

        // w1 died: once its lease ran out, the run comes back to another worker, and w1 can
        // neither renew nor record it.
        Time.Advance(lease + TimeSpan.FromSeconds(1));
        var reclaimed = Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 4, default));
        Assert.Equal(2, reclaimed.Attempts);
        Assert.Empty(await queue.RenewAsync(Lease("w1", Time.GetUtcNow(), lease), [row.Id], default));
        Assert.Empty(await queue.CompleteAsync("w1", [Uploaded(claimed, "late.csv")], Time.GetUtcNow(), default));
        var untouched = await Db().FileRuns.SingleAsync(r => r.Id == row.Id);
        Assert.Equal((FileRunStatus.Pending, "w2", (string?)null), (untouched.Status, untouched.LeaseOwner, untouched.FileName));

        Assert.Equal([row.Id], await queue.CompleteAsync("w2", [Uploaded(reclaimed, "day.csv")], Time.GetUtcNow(), default));
        var done = await Db().FileRuns.SingleAsync(r => r.Id == row.Id);
        Assert.Equal((FileRunStatus.Succeeded, (string?)null, "day.csv", 3, 3L), (done.Status, done.LeaseOwner, done.FileName, done.Rows, done.Bytes));
        Assert.Equal(new byte[] { 1, 2, 3 }, done.Content);
        Assert.Equal(Time.GetUtcNow(), done.CompletedAt);
        // Finished: never claimed again.
        Time.Advance(TimeSpan.FromDays(1));
        Assert.Empty(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 4, default));
    }

    [Fact]
    public async Task A_failed_file_run_is_due_at_its_retry_time_a_release_takes_back_its_attempt_and_a_final_failure_alerts_once()
    {
        var row = await FileRunAsync("2026-11-20", Time.GetUtcNow());
        var settings = Db();
        settings.ConfirmationSettings.Add(new ConfirmationSettings { OrganizationId = 1, NotificationEmails = ["ops@example.com"] });
        await settings.SaveChangesAsync();
        var queue = new FileRunLeaseStore(Scopes, Gate);
        var lease = TimeSpan.FromSeconds(30);

        // Given back untried (a stopping process): due at once, the attempt not counted.
        Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 4, default));
        await queue.ReleaseAsync("w1", [row.Id], default);
        var claimed = Assert.Single(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow(), lease), 4, default));
        Assert.Equal(1, claimed.Attempts);

        // A failed upload: pending again, due at its retry time, not before.
        var retryAt = Time.GetUtcNow().AddSeconds(30);
        var error = new string('x', 999) + "😀😀";
        var failed = new FileRunOutcome(claimed, new RunResult(3, null, "day.csv", error), retryAt, "files");
        Assert.Equal(FileRunStatus.Pending, failed.Status);
        Assert.Equal([row.Id], await queue.CompleteAsync("w2", [failed], Time.GetUtcNow(), default));
        var waiting = await Db().FileRuns.SingleAsync(r => r.Id == row.Id);
        Assert.Equal((FileRunStatus.Pending, retryAt, (string?)null), (waiting.Status, waiting.DueAt, waiting.LeaseOwner));
        // Clipped to the column without splitting a surrogate pair.
        Assert.Equal(new string('x', 999), waiting.LastError);
        Assert.Empty(await queue.ClaimAsync(Lease("w1", retryAt.AddSeconds(-1), lease), 4, default));
        Time.SetUtcNow(retryAt);
        claimed = Assert.Single(await queue.ClaimAsync(Lease("w1", Time.GetUtcNow(), lease), 4, default));
        Assert.Equal(2, claimed.Attempts);

        // Failed for good: the alert e-mail is queued with it, once per address.
        var final = new FileRunOutcome(claimed, new RunResult(0, null, null, "wrong host key", Permanent: true), null, "files");
        Assert.Equal(FileRunStatus.Failed, final.Status);
        Assert.Equal([row.Id], await queue.CompleteAsync("w1", [final], Time.GetUtcNow(), default));
        var over = await Db().FileRuns.SingleAsync(r => r.Id == row.Id);
        Assert.Equal((FileRunStatus.Failed, "wrong host key"), (over.Status, over.LastError));
        var alert = Assert.Single(await Db().EmailOutbox.Where(m => m.DedupKey.StartsWith($"filerun:{row.Id}:")).ToListAsync());
        Assert.Equal("ops@example.com", alert.Recipient);
        Assert.Empty(await queue.CompleteAsync("w1", [final], Time.GetUtcNow(), default));
        Assert.Empty(await queue.ClaimAsync(Lease("w2", Time.GetUtcNow().AddDays(1), lease), 4, default));
    }

    [Fact]
    public async Task Api_keys_are_unique_by_hash()
    {
        var db = Db();
        db.ApiKeys.Add(new ApiKey { OrganizationId = 1, Name = "a", KeyHash = new string('a', 64), Prefix = "pb_", Role = "admin" });
        db.ApiKeys.Add(new ApiKey { OrganizationId = 2, Name = "b", KeyHash = new string('a', 64), Prefix = "pb_", Role = "admin" });
        await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
    }
}

public sealed class SqliteStorageTests : StorageComplianceTests
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "postback-tests", Guid.NewGuid().ToString("N"));

    protected override Task<string> CreateDatabaseAsync()
    {
        Directory.CreateDirectory(_directory);
        return Task.FromResult($"Data Source={Path.Combine(_directory, "postback.db")};Pooling=false");
    }

    protected override PostbackDb Open(string connectionString) =>
        new SqlitePostbackDb(new DbContextOptionsBuilder<SqlitePostbackDb>().UseSqlite(connectionString).Options);

    protected override IDeliveryStore DeliveryStore(IServiceScopeFactory scopes, WriteGate gate) => new SqliteDeliveryStore(scopes, gate);

    protected override IngestStore IngestStore(WriteGate gate) => new SqliteIngestStore(gate);
}

public sealed class PostgresStorageTests : StorageComplianceTests
{
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync("pb_storage");

    protected override PostbackDb Open(string connectionString) =>
        new PostgresPostbackDb(new DbContextOptionsBuilder<PostgresPostbackDb>().UseNpgsql(connectionString).Options);

    protected override IDeliveryStore DeliveryStore(IServiceScopeFactory scopes, WriteGate gate) => new PostgresDeliveryStore(scopes, gate);

    protected override IngestStore IngestStore(WriteGate gate) => new PostgresIngestStore(gate);

    // What the ingest's lookups (plan_cache_mode) and the outcome batches (synchronous_commit)
    // rely on: a batch is one transaction, so a local setting holds for the batch's statements
    // and ends with it, never reaching the pooled connection's next user.
    [Theory]
    [InlineData("plan_cache_mode", "force_custom_plan", "auto")]
    [InlineData("synchronous_commit", "off", "on")]
    public async Task A_local_setting_holds_for_the_rest_of_its_batch_and_ends_with_it(string name, string value, string otherwise)
    {
        await using var db = Db();
        await db.Database.OpenConnectionAsync();
        var connection = (Npgsql.NpgsqlConnection)db.Database.GetDbConnection();
        async Task<string> CurrentAsync()
        {
            await using var show = new Npgsql.NpgsqlCommand($"SELECT current_setting('{name}')", connection);
            return (string)(await show.ExecuteScalarAsync())!;
        }
        async Task SetAsync(string to)
        {
            await using var set = new Npgsql.NpgsqlCommand($"SELECT set_config('{name}', '{to}', false)", connection);
            await set.ExecuteNonQueryAsync();
        }
        // Whatever this server's own setting is, the batch sets the other value.
        var server = await CurrentAsync();
        await SetAsync(otherwise);
        await using (var batch = new Npgsql.NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new Npgsql.NpgsqlBatchCommand($"SELECT set_config('{name}', '{value}', true)"),
                new Npgsql.NpgsqlBatchCommand($"SELECT current_setting('{name}')"),
            },
        })
        {
            await using var reader = await batch.ExecuteReaderAsync();
            await reader.NextResultAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(value, reader.GetString(0));
        }
        Assert.Equal(otherwise, await CurrentAsync());
        await SetAsync(server);
    }
}
