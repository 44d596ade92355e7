using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Postback.Storage;

/// The one model both databases share. Each provider has a subclass of its own so that each
/// keeps its own migrations (Storage/Migrations/Sqlite, Storage/Migrations/Postgres).
public abstract class PostbackDb(DbContextOptions options) : DbContext(options)
{
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
            if (SaveHook()?.Inspect(this) is { } followUp)
            {
                return await SaveWithFollowUpAsync(followUp, acceptAllChangesOnSuccess, cancellationToken);
            }
            return await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
        }
        finally
        {
            ChangeTracker.AutoDetectChangesEnabled = auto;
        }
    }

    // The change and what the hook adds (its audit entries) in one transaction: the entries need
    // the ids the change is given, so they are a second statement batch inside it.
    private async Task<int> SaveWithFollowUpAsync(ISaveFollowUp followUp, bool acceptAll, CancellationToken ct)
    {
        var own = Database.CurrentTransaction is null ? await Database.BeginTransactionAsync(ct) : null;
        try
        {
            var count = await base.SaveChangesAsync(acceptAll, ct);
            followUp.Add(this);
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

    // Team registers the audit log's hook; a context built without the hub's services has none.
    private ISaveHook? SaveHook() => HubService<ISaveHook>();

    /// A service of the hub this context was made by, through the application's services
    /// (pooled contexts are built without a request); null for a context made outside a hub.
    internal T? HubService<T>() where T : class =>
        this.GetService<Microsoft.EntityFrameworkCore.Infrastructure.IDbContextOptions>()
            .FindExtension<Microsoft.EntityFrameworkCore.Infrastructure.CoreOptionsExtension>()?.ApplicationServiceProvider?.GetService<T>();

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

    // Each feature configures its own entities (an IEntityTypeConfiguration next to them).
    protected override void OnModelCreating(ModelBuilder model) =>
        model.ApplyConfigurationsFromAssembly(typeof(PostbackDb).Assembly);
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
        // The table is found by its name, so that the context names no feature's entity.
        var deliveries = model.Model.GetEntityTypes().Single(t => t.GetTableName() == "deliveries");
        model.Entity(deliveries.ClrType).HasStorageParameter("fillfactor", 70);
    }

    private sealed class ToUtcConverter() : ValueConverter<DateTimeOffset, DateTimeOffset>(
        v => v.ToUniversalTime(),
        v => v);
}
