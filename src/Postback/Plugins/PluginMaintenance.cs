using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Infrastructure;
using Postback.Storage;

namespace Postback.Plugins;

/// Postback:Plugins (README, "Configuration").
public sealed class PluginOptions
{
    public const string Section = "Postback:Plugins";

    // Inbound log entries older than this are deleted; 0 keeps them for ever.
    public int InboundLogDays { get; set; } = 30;
    // How often the maintenance pass runs (it also runs once at start).
    public int MaintenanceMinutes { get; set; } = 10;
}

/// The inbound plugins' housekeeping, in the background: deletes inbound log entries past
/// InboundLogDays (in batches, so no delete holds the database for long), and finishes the
/// line resolution of SKU links a link call left incomplete (ImportedSku.ResolvePending).
public sealed class PluginMaintenance(IServiceScopeFactory scopes, TimeProvider time, IConfiguration config, ILogger<PluginMaintenance> log)
    : BackgroundService
{
    public const int DeleteBatch = 1_000;

    private readonly PluginOptions _options = config.GetSection(PluginOptions.Section).Get<PluginOptions>() ?? new PluginOptions();

    // A pass every MaintenanceMinutes, and one at start, on the lease-queue engine.
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new PeriodicJob("Inbound plugin maintenance", TimeSpan.FromMinutes(Math.Max(1, _options.MaintenanceMinutes)),
            RunOnceAsync, time, log).RunAsync(stoppingToken);

    /// One pass: prune the inbound log, then finish pending SKU links.
    public async Task<(int Deleted, int ResolvedLines)> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var gate = scope.ServiceProvider.GetRequiredService<WriteGate>();
        var deleted = _options.InboundLogDays <= 0 ? 0 : await PruneAsync(db, gate, time.GetUtcNow().AddDays(-_options.InboundLogDays), ct);
        if (deleted > 0)
        {
            log.LogInformation("Deleted {Count} inbound log entries older than {Days} days", deleted, _options.InboundLogDays);
        }
        var resolved = await SkuOperations.ResolvePendingAsync(db, gate, time, ct);
        return (deleted, resolved);
    }

    /// Deletes entries received before the cutoff (indexed), DeleteBatch at a time.
    public static async Task<int> PruneAsync(PostbackDb db, WriteGate gate, DateTimeOffset cutoff, CancellationToken ct)
    {
        var total = 0;
        while (true)
        {
            var ids = await db.InboundLog.AsNoTracking().Where(e => e.ReceivedAt < cutoff)
                .OrderBy(e => e.Id).Select(e => e.Id).Take(DeleteBatch).ToListAsync(ct);
            if (ids.Count == 0)
            {
                return total;
            }
            using (await gate.EnterAsync(ct))
            {
                total += await db.InboundLog.Where(e => ids.Contains(e.Id)).ExecuteDeleteAsync(ct);
            }
            if (ids.Count < DeleteBatch)
            {
                return total;
            }
        }
    }
}
