using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Catalog;

public sealed record SkuView(string Sku, string? Name, bool Linked, string? ProductId, long? PluginInstanceId, DateTimeOffset FirstSeenAt, DateTimeOffset? LinkedAt);

public sealed record SkuLinkInput(string? ProductId);

public sealed record SkuLinked(SkuView Sku, int ResolvedOrders, int ResolvedLines);

internal static class SkusApi
{
    public static RouteGroupBuilder MapSkus(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/skus").WithTags("Catalog");
        group.MapGet("/", List).WithSummary("SKUs imported from inbound postbacks; ?linked=false lists those not yet linked to a product.");
        group.MapPost("/{sku}/link", Link).WithSummary("Link a SKU to a catalog product and resolve the stored order lines that carry it.");
        return api;
    }

    private static async Task<Ok<List<SkuView>>> List(bool? linked, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var skus = await SkuOperations.ListAsync(db, user.OrganizationId(), linked, ct);
        return TypedResults.Ok(skus.Select(View).ToList());
    }

    private static async Task<Results<Ok<SkuLinked>, ValidationProblem>> Link(
        string sku, SkuLinkInput input, ClaimsPrincipal user, PostbackDb db, WriteGate gate, TimeProvider time, CancellationToken ct)
    {
        var result = await SkuOperations.LinkAsync(db, gate, time, user.OrganizationId(), sku, input.ProductId, ct);
        if (result.Sku is null)
        {
            return Problems.Validation(result.Errors);
        }
        return TypedResults.Ok(new SkuLinked(View(result.Sku), result.ResolvedOrders, result.ResolvedLines));
    }

    private static SkuView View(ImportedSku s) => new(s.Sku, s.Name, s.ProductId is not null, s.ProductId, s.PluginInstanceId, s.FirstSeenAt, s.LinkedAt);
}
