using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.FileExports;
using Postback.Infrastructure;
using Postback.Notifications;
using Postback.Orders;
using Postback.Plugins;
using Postback.Retention;
using Postback.Storage.Postgres;
using Postback.Storage.Sqlite;

namespace Postback.Storage.Stores;

public static class StorageSetup
{
    public static IServiceCollection AddPostbackStorage(this IServiceCollection services, IConfiguration configuration)
    {
        // Which database decides what is registered, so the section is read (and checked) now.
        var options = configuration.ReadSettings<PostbackOptions>(PostbackOptions.Section);
        var connectionString = configuration.GetConnectionString("Postback");
        switch (options.Storage.Provider.Trim().ToLowerInvariant())
        {
            case "sqlite":
                connectionString ??= DefaultSqlite(options.Storage.DataDirectory);
                EnsureSqliteDirectory(connectionString);
                services.AddDbContextPool<PostbackDb, SqlitePostbackDb>(o => o.UseSqlite(connectionString).AddInterceptors(new SqliteBusyTimeout()));
                services.AddSingleton(new WriteGate(serialize: true));
                services.AddSingleton<IDeliveryStore, SqliteDeliveryStore>();
                services.AddSingleton<IIngestStore, SqliteIngestStore>();
                services.AddSingleton<IRetentionStore, SqliteRetentionStore>();
                break;
            case "postgres" or "postgresql":
                if (string.IsNullOrWhiteSpace(connectionString))
                {
                    throw new InvalidOperationException("Postback:Storage:Provider is postgres, but ConnectionStrings:Postback is not set.");
                }
                var tuned = TunePostgres(connectionString);
                services.AddDbContextPool<PostbackDb, PostgresPostbackDb>(o => o.UseNpgsql(tuned));
                services.AddSingleton(new WriteGate(serialize: false));
                services.AddSingleton<IDeliveryStore, PostgresDeliveryStore>();
                services.AddSingleton<IIngestStore, PostgresIngestStore>();
                services.AddSingleton<IRetentionStore, RetentionStore>();
                break;
            default:
                throw new InvalidOperationException($"Postback:Storage:Provider must be sqlite or postgres, not '{options.Storage.Provider}'.");
        }
        services.AddSingleton<IConfirmationStore, ConfirmationStore>();
        services.AddSingleton<IEmailOutboxStore, EmailOutboxStore>();
        services.AddSingleton<IFileRunLeaseStore, FileRunLeaseStore>();
        services.AddSingleton<IJobLeaseStores, JobLeaseStores>();
        services.AddSingleton<ISkuStore, SkuStore>();
        services.AddSingleton<IInboundLogStore, InboundLogStore>();
        return services;
    }

    /// Defaults that matter for a hub issuing the same few statements thousands of times a
    /// second (bench/README.md): prepare them, and do not reset the session state on every
    /// return of a pooled connection. Anything the operator set explicitly wins.
    private static string TunePostgres(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var given = connectionString.ToLowerInvariant().Replace(" ", "");
        if (!given.Contains("maxautoprepare"))
        {
            builder.MaxAutoPrepare = 100;
        }
        if (!given.Contains("autoprepareminusages"))
        {
            builder.AutoPrepareMinUsages = 2;
        }
        if (!given.Contains("noresetonclose"))
        {
            builder.NoResetOnClose = true;
        }
        return builder.ToString();
    }

    private static string DefaultSqlite(string dataDirectory) =>
        new SqliteConnectionStringBuilder { DataSource = Path.Combine(dataDirectory, "postback.db") }.ToString();

    /// The database holds customers' personal data and API key hashes: a folder the hub creates
    /// is its owner's only (0700), and so is a database file it creates (0600). SQLite gives the
    /// -wal and -shm files the mode of the database file, so creating that file empty first,
    /// with its mode, covers all three. A folder or file the operator made is left as it is.
    private static void EnsureSqliteDirectory(string connectionString)
    {
        var dataSource = new SqliteConnectionStringBuilder(connectionString).DataSource;
        if (string.IsNullOrEmpty(dataSource) || dataSource == ":memory:" || dataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }
        var path = Path.GetFullPath(dataSource);
        var directory = Path.GetDirectoryName(path);
        if (OperatingSystem.IsWindows())
        {
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
            return;
        }
        if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (!File.Exists(path))
        {
            try
            {
                using var _ = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process of the hub created it at the same moment.
            }
        }
    }
}
