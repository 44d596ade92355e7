using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Orders;
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
        var organizationId = user.OrganizationId();
        var query = db.ImportedSkus.AsNoTracking().Where(s => s.OrganizationId == organizationId);
        if (linked is { } wanted)
        {
            query = wanted ? query.Where(s => s.ProductId != null) : query.Where(s => s.ProductId == null);
        }
        var skus = await query.OrderBy(s => s.Id).ToListAsync(ct);
        return TypedResults.Ok(skus.Select(View).ToList());
    }

    private static async Task<Results<Ok<SkuLinked>, ValidationProblem>> Link(
        string sku, SkuLinkInput input, ClaimsPrincipal user, PostbackDb db, WriteGate gate, TimeProvider time, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var errors = new ValidationErrors();
        sku = sku.Trim();
        if (sku.Length is 0 or > 64 || sku.Any(char.IsControl))
        {
            errors.Add("sku", "must be 1 to 64 characters without control characters");
        }
        var productId = input.ProductId?.Trim();
        Product? product = null;
        if (string.IsNullOrEmpty(productId))
        {
            errors.Add("productId", "is required");
        }
        else
        {
            product = await db.Products.AsNoTracking().Where(p => p.OrganizationId == organizationId && p.ProductId == productId).OrderBy(p => p.Id).FirstOrDefaultAsync(ct);
            if (product is null)
            {
                errors.Add("productId", $"there is no product '{(productId.Length > 64 ? productId[..64] + "…" : productId)}' in any campaign");
            }
        }
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }

        var now = time.GetUtcNow();
        // A SKU that was kept as unknown (import off) can be linked too: the link is made here.
        var row = await db.ImportedSkus.FirstOrDefaultAsync(s => s.OrganizationId == organizationId && s.Sku == sku, ct);
        if (row is null)
        {
            row = new ImportedSku { OrganizationId = organizationId, Sku = sku, FirstSeenAt = now };
            db.ImportedSkus.Add(row);
        }
        row.ProductId = product!.ProductId;
        row.LinkedAt = now;
        using (await gate.EnterAsync(ct))
        {
            await db.SaveChangesAsync(ct);
        }
        var (orders, lines) = await ResolveOrderLinesAsync(db, gate, organizationId, sku, product, time, ct);
        return TypedResults.Ok(new SkuLinked(View(row), orders, lines));
    }

    /// Gives the stored order lines that carry the SKU and no product the linked product. Each
    /// order is written with its version checked, so a postback merging into it at the same time
    /// is not overwritten: the loser reads the order again.
    private static async Task<(int Orders, int Lines)> ResolveOrderLinesAsync(
        PostbackDb db, WriteGate gate, long organizationId, string sku, Product product, TimeProvider time, CancellationToken ct)
    {
        // Orders keep their items as JSON; this finds the candidates, the loop below checks them.
        var needle = "\"sku\":" + JsonSerializer.Serialize(sku);
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var rows = await db.Orders.Where(o => o.OrganizationId == organizationId && o.Data.Contains(needle)).ToListAsync(ct);
            var orders = 0;
            var lines = 0;
            foreach (var row in rows)
            {
                var order = OrderJson.Deserialize(row.Data);
                var changed = 0;
                var items = order.Items.Select(i =>
                {
                    if (i.ProductId is null && string.Equals(i.Sku, sku, StringComparison.Ordinal))
                    {
                        changed++;
                        return SkuResolver.Link(i, product);
                    }
                    return i;
                }).ToList();
                if (changed == 0)
                {
                    continue;
                }
                row.Data = OrderJson.Serialize(new OrderData { OrderId = order.OrderId, Fields = order.Fields, Items = items });
                row.Version++;
                row.UpdatedAt = time.GetUtcNow();
                orders++;
                lines += changed;
            }
            try
            {
                using (await gate.EnterAsync(ct))
                {
                    await db.SaveChangesAsync(ct);
                }
                return (orders, lines);
            }
            catch (DbUpdateConcurrencyException) when (attempt < 5)
            {
            }
        }
    }

    private static SkuView View(ImportedSku s) => new(s.Sku, s.Name, s.ProductId is not null, s.ProductId, s.PluginInstanceId, s.FirstSeenAt, s.LinkedAt);
}
