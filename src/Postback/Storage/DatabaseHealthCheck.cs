using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Postback.Storage;

public sealed class DatabaseHealthCheck(PostbackDb db) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default) =>
        await db.Database.CanConnectAsync(ct)
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("The database cannot be reached.");
}
