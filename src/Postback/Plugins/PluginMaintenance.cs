using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Storage;

namespace Postback.Plugins;

/// Postback:Plugins (README, "Configuration").
public sealed class PluginOptions
{
    public const string Section = "Postback:Plugins";

    // InboundLogDays was here: the inbound log's age limit is Postback:Retention:InboundLog now
    // (RetentionOptions reads the old key, with a warning).
    // How often the maintenance pass runs (it also runs once at start).
    public int MaintenanceMinutes { get; set; } = 10;
}

/// The inbound plugins' housekeeping, in the background: finishes the line resolution of SKU
/// links a link call left incomplete (ImportedSku.ResolvePending). The inbound log's age limit
/// is the retention sweep's (Retention/RetentionSweep.cs).
public sealed class PluginMaintenance(IServiceScopeFactory scopes, TimeProvider time, IConfiguration config, ILogger<PluginMaintenance> log)
    : BackgroundService
{
    private readonly PluginOptions _options = config.GetSection(PluginOptions.Section).Get<PluginOptions>() ?? new PluginOptions();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromMinutes(Math.Max(1, _options.MaintenanceMinutes));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The next pass tries again; nothing here is lost by waiting.
                log.LogError(e, "Inbound plugin maintenance failed");
            }
            try
            {
                await Task.Delay(interval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// One pass: finish pending SKU links.
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var gate = scope.ServiceProvider.GetRequiredService<WriteGate>();
        return await SkuOperations.ResolvePendingAsync(db, gate, time, ct);
    }
}
