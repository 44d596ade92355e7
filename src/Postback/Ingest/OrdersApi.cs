using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Ingest;

public sealed record OrderEventView(long Id, string EventId, string Type, DateTimeOffset OccurredAt, DateTimeOffset ReceivedAt);

public sealed record OrderView(
    long OrderId, JsonObject Order, IReadOnlyList<OrderEventView> Events, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    Confirmations.ConfirmationView? Confirmation = null, IReadOnlyList<CapturedField>? Captured = null);

internal static class OrdersApi
{
    public static RouteGroupBuilder MapOrders(this RouteGroupBuilder api)
    {
        api.MapGet("/orders/{orderId:long}", GetOrder).WithSummary("An order as last received, with its events.");
        return api;
    }

    private static async Task<Results<Ok<OrderView>, ProblemHttpResult>> GetOrder(long orderId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var row = await db.Orders.AsNoTracking().FirstOrDefaultAsync(o => o.OrganizationId == organizationId && o.OrderId == orderId, ct);
        if (row is null)
        {
            return Problems.NotFound($"There is no order {orderId}.");
        }
        var events = await db.OrderEvents.AsNoTracking()
            .Where(e => e.OrderKey == row.Id)
            .OrderBy(e => e.Id)
            .Select(e => new OrderEventView(e.Id, e.EventId, e.Type, e.OccurredAt, e.ReceivedAt))
            .ToListAsync(ct);
        var confirmation = await Confirmations.ConfirmationsApi.ViewForOrderAsync(db, organizationId, orderId, ct);
        var order = OrderJson.Deserialize(row.Data);
        return TypedResults.Ok(new OrderView(row.OrderId, OrderJson.ToApi(order), events, row.CreatedAt, row.UpdatedAt, confirmation,
            OrderCaptures.List(row.CaptureSources, order)));
    }
}
