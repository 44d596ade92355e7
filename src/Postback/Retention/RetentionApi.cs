using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Retention;

public sealed record RetentionView(string FinishedDeliveries, string Orders, string InboundLog, string SweepInterval,
    DateTimeOffset? LastSweepStartedAt, DateTimeOffset? LastSweepAt, RemovedCounts? LastSweepRemoved);

public sealed record StorageView(string Provider, long DatabaseBytes, long? FreeBytes, bool RowsEstimated, IReadOnlyList<TableRows> Tables, RetentionView Retention);

internal static class RetentionApi
{
    public const int MaxCustomerIdLength = 64;

    /// Reads and checks Postback:Retention now, so a bad value stops the hub before it starts.
    public static IServiceCollection AddRetention(this IServiceCollection services, IConfiguration configuration)
    {
        var (options, warnings) = RetentionOptions.Read(configuration);
        services.AddSingleton(options);
        services.AddSingleton(new RetentionWarnings(warnings));
        services.AddSingleton<RetentionSweep>();
        services.AddHostedService<RetentionWorker>();
        return services;
    }

    public static RouteGroupBuilder MapRetention(this RouteGroupBuilder api)
    {
        api.MapGet("/storage", Storage).WithTags("Privacy and storage")
            .WithSummary("Rows per table and the database's size (for the whole database, all organizations), and the retention settings.");
        api.MapDelete("/customers/{customerId}", Erase).WithTags("Privacy and storage")
            .WithSummary("Erase one customer: cancel their pending deliveries, then delete their orders, events, deliveries with what was sent, history, confirmations and inbound log entries. Answers with the counts.");
        return api;
    }

    private static async Task<Ok<StorageView>> Storage(PostbackDb db, RetentionSweep sweep, CancellationToken ct)
    {
        var report = await StorageReport.ReadAsync(db, ct);
        var o = sweep.Options;
        var last = sweep.Last;
        return TypedResults.Ok(new StorageView(report.Provider, report.DatabaseBytes, report.FreeBytes, report.RowsEstimated, report.Tables,
            new RetentionView(RetentionOptions.Describe(o.FinishedDeliveries), RetentionOptions.Describe(o.Orders), RetentionOptions.Describe(o.InboundLog),
                RetentionOptions.Describe(o.SweepInterval), last?.StartedAt, last?.At, last?.Removed)));
    }

    private static async Task<Results<Ok<ErasureCounts>, ValidationProblem>> Erase(
        string customerId, ClaimsPrincipal user, IRetentionStore store, TimeProvider time, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(customerId))
        {
            return Problems.Validation("customerId", "is required");
        }
        if (customerId.Length > MaxCustomerIdLength)
        {
            return Problems.Validation("customerId", $"is at most {MaxCustomerIdLength} characters (as orders store it)");
        }
        if (customerId.Any(char.IsControl) || customerId != customerId.Trim())
        {
            return Problems.Validation("customerId", "must not contain control characters or start or end with white space");
        }
        return TypedResults.Ok(await store.EraseCustomerAsync(user.OrganizationId(), customerId, time.GetUtcNow(), ct));
    }
}
