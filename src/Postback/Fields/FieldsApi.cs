using Microsoft.AspNetCore.Http.HttpResults;

namespace Postback.Fields;

public sealed record FieldView(string Name, string Tag, string Group, string Kind, string Meaning, bool Derived);

public sealed record FieldCatalogView(IReadOnlyList<FieldView> Fields, IReadOnlyList<FieldView> ProductLineFields, string ExtraFields);

internal static class FieldsApi
{
    public static RouteGroupBuilder MapFields(this RouteGroupBuilder api)
    {
        api.MapGet("/fields", Get).WithTags("Fields").WithSummary("Every merge tag the renderer knows, with its meaning.");
        return api;
    }

    private static Ok<FieldCatalogView> Get() => TypedResults.Ok(Catalog);

    private static readonly FieldCatalogView Catalog = new(
        FieldCatalog.OrderFields.Concat(FieldCatalog.DerivedFields)
            .Select(f => new FieldView(f.Name, $"[{f.Name}]", f.Group, f.Kind.ToString().ToLowerInvariant(), f.Meaning, f.Derived))
            .ToList(),
        FieldCatalog.ProductLineFields
            .Select(p => new FieldView($"productN_{p.Suffix}", $"[product1_{p.Suffix}]", "line items", p.Suffix is "qty" ? "number" : p.Suffix is "price" ? "money" : "text", p.Meaning + $" N runs from 1 to {FieldCatalog.MaxProductLines}.", true))
            .ToList(),
        "Any other field an order carries (a letter, then letters, digits or underscores) is kept and can be used as a merge tag by its name.");
}
