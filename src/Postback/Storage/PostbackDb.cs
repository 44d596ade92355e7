using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Plugins;
using Postback.Notifications;

namespace Postback.Storage;

/// The one model both databases share. Each provider has a subclass of its own so that each
/// keeps its own migrations (Storage/Migrations/Sqlite, Storage/Migrations/Postgres).
public abstract class PostbackDb(DbContextOptions options) : DbContext(options)
{
    public DbSet<Organization> Organizations => Set<Organization>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<Campaign> Campaigns => Set<Campaign>();
    public DbSet<Product> Products => Set<Product>();
    public DbSet<StoredOrder> Orders => Set<StoredOrder>();
    public DbSet<OrderEvent> OrderEvents => Set<OrderEvent>();
    public DbSet<ExportProfile> ExportProfiles => Set<ExportProfile>();
    public DbSet<Delivery> Deliveries => Set<Delivery>();
    public DbSet<DeliveryAttempt> DeliveryAttempts => Set<DeliveryAttempt>();
    public DbSet<HistoryEntry> History => Set<HistoryEntry>();
    public DbSet<PluginInstance> PluginInstances => Set<PluginInstance>();
    public DbSet<InboundLogEntry> InboundLog => Set<InboundLogEntry>();
    public DbSet<Catalog.ImportedSku> ImportedSkus => Set<Catalog.ImportedSku>();
    public DbSet<ConfirmationSettings> ConfirmationSettings => Set<ConfirmationSettings>();
    public DbSet<OrderConfirmation> Confirmations => Set<OrderConfirmation>();
    public DbSet<ConfirmationAttempt> ConfirmationAttempts => Set<ConfirmationAttempt>();
    public DbSet<OutboxEmail> EmailOutbox => Set<OutboxEmail>();
    public DbSet<FileExports.FileRun> FileRuns => Set<FileExports.FileRun>();
    public DbSet<Team.User> Users => Set<Team.User>();
    public DbSet<Team.AuditEntry> Audit => Set<Team.AuditEntry>();
    public DbSet<Retention.JobLease> JobLeases => Set<Retention.JobLease>();
    public DbSet<Admin.AdminSession> AdminSessions => Set<Admin.AdminSession>();

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public override async Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        // Changes are detected once, here; SaveChanges would otherwise scan every tracked
        // entity a second time (the hot ingest path tracks thousands).
        ChangeTracker.DetectChanges();
        var auto = ChangeTracker.AutoDetectChangesEnabled;
        ChangeTracker.AutoDetectChangesEnabled = false;
        try
        {
            NormalizeTimes();
            if (AuditActor() is { } actor && Team.AuditLog.Collect(this) is { Count: > 0 } audited)
            {
                return await SaveAuditedAsync(actor, audited, acceptAllChangesOnSuccess, cancellationToken);
            }
            return await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
        }
        finally
        {
            ChangeTracker.AutoDetectChangesEnabled = auto;
        }
    }

    // The change and its audit entries in one transaction: the entries need the ids the change
    // is given, so they are a second statement batch inside it.
    private async Task<int> SaveAuditedAsync(
        (HttpContext Http, long OrganizationId, string Actor) actor, List<Team.AuditLog.Pending> audited, bool acceptAll, CancellationToken ct)
    {
        var own = Database.CurrentTransaction is null ? await Database.BeginTransactionAsync(ct) : null;
        try
        {
            var count = await base.SaveChangesAsync(acceptAll, ct);
            var now = actor.Http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            Team.AuditLog.Add(this, actor.Http, actor.OrganizationId, actor.Actor, audited, now);
            ChangeTracker.DetectChanges();
            NormalizeTimes();
            await base.SaveChangesAsync(acceptAll, ct);
            if (own is not null)
            {
                await own.CommitAsync(ct);
            }
            return count;
        }
        finally
        {
            if (own is not null)
            {
                await own.DisposeAsync();
            }
        }
    }

    // Through the application's services: pooled contexts are built without a request.
    private (HttpContext Http, long OrganizationId, string Actor)? AuditActor()
    {
        var services = this.GetService<Microsoft.EntityFrameworkCore.Infrastructure.IDbContextOptions>()
            .FindExtension<Microsoft.EntityFrameworkCore.Infrastructure.CoreOptionsExtension>()?.ApplicationServiceProvider;
        var http = services?.GetService<IHttpContextAccessor>()?.HttpContext;
        return Team.AuditLog.ActorOf(http) is { } actor ? (http!, actor.OrganizationId, actor.Actor) : null;
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        ChangeTracker.DetectChanges();
        var auto = ChangeTracker.AutoDetectChangesEnabled;
        ChangeTracker.AutoDetectChangesEnabled = false;
        try
        {
            NormalizeTimes();
            return base.SaveChanges(acceptAllChangesOnSuccess);
        }
        finally
        {
            ChangeTracker.AutoDetectChangesEnabled = auto;
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Microsoft.EntityFrameworkCore.Metadata.IEntityType, Microsoft.EntityFrameworkCore.Metadata.IProperty[]> TimeProperties = new();

    // Both databases keep times as UTC to the microsecond. Rounding the entities themselves,
    // not only the stored values, makes what a POST echoes equal to what a later GET reads.
    private void NormalizeTimes()
    {
        foreach (var entry in ChangeTracker.Entries())
        {
            if (entry.State is not (EntityState.Added or EntityState.Modified))
            {
                continue;
            }
            var properties = TimeProperties.GetOrAdd(entry.Metadata, type => type.GetProperties()
                .Where(p => p.ClrType == typeof(DateTimeOffset) || p.ClrType == typeof(DateTimeOffset?)).ToArray());
            foreach (var property in properties)
            {
                var value = entry.Property(property);
                if (value.CurrentValue is DateTimeOffset time && (time.Offset != TimeSpan.Zero || time.UtcTicks % 10 != 0))
                {
                    value.CurrentValue = new DateTimeOffset(time.UtcTicks - (time.UtcTicks % 10), TimeSpan.Zero);
                }
            }
        }
    }

    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<Organization>(e =>
        {
            e.ToTable("organizations");
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.TimeZone).HasMaxLength(64);
            e.HasIndex(x => x.CompanyId).IsUnique();
        });

        model.Entity<Team.User>(e =>
        {
            e.ToTable("users");
            e.Property(x => x.Email).HasMaxLength(254);
            e.Property(x => x.NormalizedEmail).HasMaxLength(254);
            e.Property(x => x.PasswordHash).HasMaxLength(200);
            e.Property(x => x.Role).HasMaxLength(16);
            e.HasIndex(x => x.NormalizedEmail).IsUnique();
            e.HasIndex(x => x.OrganizationId);
            e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<Team.AuditEntry>(e =>
        {
            e.ToTable("audit_log");
            e.Property(x => x.Actor).HasMaxLength(254);
            e.Property(x => x.Action).HasMaxLength(32);
            e.Property(x => x.ResourceType).HasMaxLength(64);
            e.Property(x => x.ResourceId).HasMaxLength(128);
            e.HasIndex(x => new { x.OrganizationId, x.Id });
            e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<ApiKey>(e =>
        {
            e.ToTable("api_keys");
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.KeyHash).HasMaxLength(64);
            e.Property(x => x.Prefix).HasMaxLength(16);
            e.Property(x => x.Role).HasMaxLength(16);
            e.Property(x => x.CreatedBy).HasMaxLength(254);
            e.HasIndex(x => x.KeyHash).IsUnique();
            e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<Campaign>(e =>
        {
            e.ToTable("campaigns");
            e.Property(x => x.CampaignId).HasMaxLength(64);
            e.Property(x => x.Name).HasMaxLength(200);
            e.HasIndex(x => new { x.OrganizationId, x.CampaignId }).IsUnique();
            e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
            e.HasMany(x => x.Products).WithOne().HasForeignKey(x => x.CampaignKey).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<Product>(e =>
        {
            e.ToTable("products");
            e.Property(x => x.ProductId).HasMaxLength(64);
            e.Property(x => x.Sku).HasMaxLength(64);
            e.Property(x => x.Name).HasMaxLength(255);
            e.Property(x => x.Price).HasPrecision(18, 4);
            e.HasIndex(x => new { x.CampaignKey, x.ProductId }).IsUnique();
            e.HasIndex(x => new { x.OrganizationId, x.ProductId });
            e.HasIndex(x => new { x.OrganizationId, x.Sku });
        });

        model.Entity<StoredOrder>(e =>
        {
            e.ToTable("orders");
            e.Property(x => x.CustomerId).HasMaxLength(64);
            e.Property(x => x.CampaignId).HasMaxLength(64);
            e.Property(x => x.Version).IsConcurrencyToken();
            e.HasIndex(x => new { x.OrganizationId, x.OrderId }).IsUnique();
            e.HasIndex(x => new { x.OrganizationId, x.CustomerId });
            // Retention (Postback:Retention:Orders) finds orders by age.
            e.HasIndex(x => x.UpdatedAt);
            e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<OrderEvent>(e =>
        {
            e.ToTable("order_events");
            e.Property(x => x.EventId).HasMaxLength(100);
            e.Property(x => x.Type).HasMaxLength(32);
            e.HasIndex(x => new { x.OrganizationId, x.EventId }).IsUnique();
            e.HasIndex(x => x.OrderKey);
            // A file profile's day reads its events by time.
            e.HasIndex(x => new { x.OrganizationId, x.OccurredAt });
            e.HasOne(x => x.Order).WithMany().HasForeignKey(x => x.OrderKey).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<ExportProfile>(e =>
        {
            e.ToTable("export_profiles");
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.Type).HasMaxLength(32);
            e.Property(x => x.PostbackUrl).HasMaxLength(2048);
            e.Property(x => x.SigningSecret).HasMaxLength(100);
            e.Property(x => x.Ordering).HasMaxLength(16);
            e.Property(x => x.Captures).HasConversion(JsonConverter<List<ProfileCapture>>(), JsonComparer<List<ProfileCapture>>());
            e.Property(x => x.Mappings).HasConversion(JsonConverter<List<ExportMapping>>(), JsonComparer<List<ExportMapping>>());
            e.Property(x => x.Routes).HasConversion(JsonConverter<List<ExportRoute>>(), JsonComparer<List<ExportRoute>>());
            e.Property(x => x.File).HasConversion(NullableJsonConverter<FileExports.FileSettings>(), JsonComparer<FileExports.FileSettings?>());
            e.HasIndex(x => x.OrganizationId);
            e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        });

        ConfigureDeliveries(model);
        PluginModel.Configure(model);
        ConfirmationModel.Configure(model, JsonConverter<List<string>>, JsonComparer<List<string>>);
        EmailModel.Configure(model);
        FileExports.FileRunModel.Configure(model);
        Retention.RetentionModel.Configure(model);
        Admin.AdminSessions.Configure(model);
    }

    private static void ConfigureDeliveries(ModelBuilder model)
    {
        model.Entity<Delivery>(e =>
        {
            e.ToTable("deliveries");
            e.Property(x => x.CustomerId).HasMaxLength(64);
            e.Property(x => x.CustomerType).HasMaxLength(32);
            e.Property(x => x.Status).HasMaxLength(16);
            e.Property(x => x.Endpoint).HasMaxLength(300);
            e.Property(x => x.LeaseOwner).HasMaxLength(64);
            e.Property(x => x.LastError).HasMaxLength(1000);
            e.Property(x => x.TraceParent).HasMaxLength(64);
            // The claim query: pending and due, oldest first. Partial, so the finished
            // deliveries (nearly all of them, over time) are not in it.
            e.HasIndex(x => x.DueAt).HasFilter("\"Status\" = 'pending'").HasDatabaseName("IX_deliveries_pending_DueAt");
            e.HasIndex(x => new { x.OrganizationId, x.ProfileId, x.Id });
            e.HasIndex(x => new { x.OrganizationId, x.OrderId });
            e.HasIndex(x => x.EventKey);
            // Ordering: "is an earlier delivery of this order and profile still pending?" and
            // "which one did it wait for?" are lookups on this index.
            e.HasIndex(x => new { x.OrderKey, x.ProfileId, x.Id }).HasDatabaseName("IX_deliveries_order_profile");
            // Retention finds finished deliveries by age; partial, so the pending ones (the hot
            // part of the table) are not in it.
            e.HasIndex(x => x.CompletedAt).HasFilter("\"CompletedAt\" IS NOT NULL").HasDatabaseName("IX_deliveries_finished_CompletedAt");
            e.HasOne(x => x.Event).WithMany().HasForeignKey(x => x.EventKey).OnDelete(DeleteBehavior.Cascade);
            e.HasOne(x => x.Order).WithMany().HasForeignKey(x => x.OrderKey).OnDelete(DeleteBehavior.NoAction);
        });

        model.Entity<DeliveryAttempt>(e =>
        {
            e.ToTable("delivery_attempts");
            e.Property(x => x.RequestMethod).HasMaxLength(16);
            e.Property(x => x.Error).HasMaxLength(1000);
            e.HasIndex(x => new { x.DeliveryId, x.Number });
            e.HasOne<Delivery>().WithMany().HasForeignKey(x => x.DeliveryId).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<HistoryEntry>(e =>
        {
            e.ToTable("customer_history");
            e.Property(x => x.CustomerId).HasMaxLength(64);
            e.Property(x => x.Kind).HasMaxLength(32);
            e.Property(x => x.CustomerType).HasMaxLength(32);
            e.Property(x => x.Message).HasMaxLength(1000);
            e.Property(x => x.Status).HasMaxLength(16);
            e.HasIndex(x => new { x.OrganizationId, x.CustomerId, x.Id });
            e.HasIndex(x => new { x.OrganizationId, x.OrderId });
            // Retention marks the lines of the deliveries it deletes.
            e.HasIndex(x => x.DeliveryId).HasFilter("\"DeliveryId\" IS NOT NULL");
        });
    }

    private static ValueConverter<T, string> JsonConverter<T>() where T : new() => new(
        v => JsonSerializer.Serialize(v, Json),
        s => JsonSerializer.Deserialize<T>(s, Json) ?? new T());

    private static ValueConverter<T?, string?> NullableJsonConverter<T>() where T : class => new(
        v => v == null ? null : JsonSerializer.Serialize(v, Json),
        s => s == null ? null : JsonSerializer.Deserialize<T>(s, Json));

    private static ValueComparer<T> JsonComparer<T>() => new(
        (a, b) => JsonSerializer.Serialize(a, Json) == JsonSerializer.Serialize(b, Json),
        v => JsonSerializer.Serialize(v, Json).GetHashCode(StringComparison.Ordinal),
        v => JsonSerializer.Deserialize<T>(JsonSerializer.Serialize(v, Json), Json)!);
}

public sealed class SqlitePostbackDb(DbContextOptions<SqlitePostbackDb> options) : PostbackDb(options)
{
    protected override void ConfigureConventions(ModelConfigurationBuilder configuration)
    {
        // SQLite has no date type: as UTC ticks the column sorts and compares in SQL, which
        // due-time queries need (EF cannot translate DateTimeOffset comparisons on SQLite).
        // Kept to the microsecond, as PostgreSQL keeps them, so both databases agree.
        configuration.Properties<DateTimeOffset>().HaveConversion<UtcTicksConverter>();
    }

    private sealed class UtcTicksConverter() : ValueConverter<DateTimeOffset, long>(
        v => v.UtcTicks - (v.UtcTicks % 10),
        v => new DateTimeOffset(v, TimeSpan.Zero));
}

public sealed class PostgresPostbackDb(DbContextOptions<PostgresPostbackDb> options) : PostbackDb(options)
{
    protected override void ConfigureConventions(ModelConfigurationBuilder configuration)
    {
        // timestamptz takes only UTC values from Npgsql; an event time given with another offset
        // is the same instant, so store it as UTC rather than fail.
        configuration.Properties<DateTimeOffset>().HaveConversion<ToUtcConverter>();
    }

    protected override void OnModelCreating(ModelBuilder model)
    {
        base.OnModelCreating(model);
        // A claim only sets the lease columns, which no index covers: with room left on each
        // page PostgreSQL updates the row in place (a HOT update), so claims add no index
        // entries for the next claim to step over.
        model.Entity<Deliveries.Delivery>().HasStorageParameter("fillfactor", 70);
    }

    private sealed class ToUtcConverter() : ValueConverter<DateTimeOffset, DateTimeOffset>(
        v => v.ToUniversalTime(),
        v => v);
}
