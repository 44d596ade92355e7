using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Catalog;

public sealed record SkuView(long Id, string Sku, string? Name, bool Linked, string? ProductId, long? PluginInstanceId, DateTimeOffset FirstSeenAt, DateTimeOffset? LinkedAt);

public sealed record SkuLinkInput(string? ProductId);

/// For SKUs a URL path cannot carry (a '/' in them): POST /api/v1/skus/link.
public sealed record SkuLinkBody(string? Sku, string? ProductId);

/// Complete is false when some stored lines are still to be resolved: the background pass (or
/// the same link call again) finishes them.
public sealed record SkuLinked(SkuView Sku, int ResolvedOrders, int ResolvedLines, bool Complete);

internal static class SkusApi
{
    public static RouteGroupBuilder MapSkus(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/skus").WithTags("Catalog");
        group.MapGet("/", List).WithSummary("SKUs imported from inbound postbacks, in id order, one page (?limit, ?afterId); ?linked=false lists those not yet linked to a product.");
        group.MapPost("/link", LinkByBody).WithSummary("Link a SKU (given in the body, so it may contain '/') to a catalog product and resolve the stored order lines that carry it.");
        group.MapPost("/{sku}/link", Link).WithSummary("Link a SKU to a catalog product and resolve the stored order lines that carry it.");
        return api;
    }

    private static async Task<Results<Ok<List<SkuView>>, ValidationProblem>> List(
        bool? linked, int? limit, long? afterId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var take = limit ?? SkuOperations.DefaultPage;
        if (take is < 1 or > SkuOperations.MaxPage)
        {
            return Problems.Validation("limit", $"must be from 1 to {SkuOperations.MaxPage}");
        }
        if (afterId is < 0)
        {
            return Problems.Validation("afterId", "must be 0 or more (the id of the last SKU of the previous page)");
        }
        var skus = await SkuOperations.ListAsync(db, user.OrganizationId(), linked, ct, take, afterId);
        return TypedResults.Ok(skus.Select(View).ToList());
    }

    private static async Task<Results<Ok<SkuLinked>, ValidationProblem>> LinkByBody(
        SkuLinkBody input, ClaimsPrincipal user, PostbackDb db, ISkuStore skus, CancellationToken ct)
    {
        if (input.Sku is null)
        {
            var errors = new ValidationErrors();
            errors.Add("sku", "is required");
            if (string.IsNullOrWhiteSpace(input.ProductId))
            {
                errors.Add("productId", "is required");
            }
            return Problems.Validation(errors);
        }
        return await Link(input.Sku, new SkuLinkInput(input.ProductId), user, db, skus, ct);
    }

    private static async Task<Results<Ok<SkuLinked>, ValidationProblem>> Link(
        string sku, SkuLinkInput input, ClaimsPrincipal user, PostbackDb db, ISkuStore skus, CancellationToken ct)
    {
        var result = await SkuOperations.LinkAsync(db, skus, user.OrganizationId(), sku, input.ProductId, ct);
        if (result.Sku is null)
        {
            return Problems.Validation(result.Errors);
        }
        return TypedResults.Ok(new SkuLinked(View(result.Sku), result.ResolvedOrders, result.ResolvedLines, result.Complete));
    }

    private static SkuView View(ImportedSku s) => new(s.Id, s.Sku, s.Name, s.ProductId is not null, s.ProductId, s.PluginInstanceId, s.FirstSeenAt, s.LinkedAt);
}
