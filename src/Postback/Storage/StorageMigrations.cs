using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Postback.Storage;

public static class StorageMigrations
{
    public static async Task MigratePostbackStorageAsync(this WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        await MigrateAsync(scope.ServiceProvider.GetRequiredService<PostbackDb>());
    }

    /// Applies migrations. Runs before the server listens, so /health only answers a hub whose
    /// schema is current.
    public static async Task MigrateAsync(PostbackDb db, CancellationToken ct = default)
    {
        await db.Database.MigrateAsync(ct);
        if (db is SqlitePostbackDb)
        {
            // WAL lets readers run beside the writer; it is a property of the file, set once.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
        }
    }
}

// Used by `dotnet ef migrations add` only; the connection strings are never opened.
public sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqlitePostbackDb>
{
    public SqlitePostbackDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqlitePostbackDb>().UseSqlite("Data Source=design-time.db").Options);
}

public sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresPostbackDb>
{
    public PostgresPostbackDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresPostbackDb>().UseNpgsql("Host=localhost;Database=postback_design").Options);
}
