using Microsoft.Extensions.Options;
using Postback.Catalog;
using Postback.Infrastructure;

namespace Postback.Plugins;

/// Postback:Plugins (README, "Configuration").
public sealed class PluginOptions : ISettings
{
    public const string Section = "Postback:Plugins";

    // InboundLogDays was here: the inbound log's age limit is Postback:Retention:InboundLog now
    // (RetentionOptions reads the old key, with a warning).
    // How often the maintenance pass runs (it also runs once at start).
    public int MaintenanceMinutes { get; set; } = 10;

    public void Check(SettingChecks check) => check.Range(nameof(MaintenanceMinutes), MaintenanceMinutes, 1, 1_440);
}

/// The inbound plugins' housekeeping, in the background: finishes the line resolution of SKU
/// links a link call left incomplete (ImportedSku.ResolvePending). The inbound log's age limit
/// is the retention sweep's (Retention/RetentionSweep.cs).
public sealed class PluginMaintenance(ISkuStore skus, TimeProvider time, IOptions<PluginOptions> options, ILogger<PluginMaintenance> log)
    : BackgroundService
{
    private readonly PluginOptions _options = options.Value;

    // A pass every MaintenanceMinutes, and one at start, on the lease-queue engine.
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new PeriodicJob("Inbound plugin maintenance", TimeSpan.FromMinutes(_options.MaintenanceMinutes),
            RunOnceAsync, time, log).RunAsync(stoppingToken);

    /// One pass: finish pending SKU links.
    public Task<int> RunOnceAsync(CancellationToken ct) => skus.ResolvePendingAsync(ct);
}
