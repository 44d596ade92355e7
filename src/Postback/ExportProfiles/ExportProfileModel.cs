using System.Text.Json.Serialization;

namespace Postback.ExportProfiles;

/// One field mapping: the export name and either a merge-tag field or a static value.
public sealed record ExportMapping(
    string ExportName,
    string? Field = null,
    [property: JsonPropertyName("static")] string? Static = null);

/// A value taken from a successful delivery's JSON answer: From is an RFC 6901 JSON Pointer,
/// Field the order's extra field it is stored in (and so the merge tag [Field]).
public sealed record ProfileCapture(string Field, string From);

public static class ProfileOrdering
{
    public const string None = "none";
    public const string PerOrder = "perOrder";
}

/// Customer types (at least one), campaigns and products; an empty list means "all". The
/// optional name is what a file profile's {route} renders (route1, route2, … when not given).
public sealed record ExportRoute(
    IReadOnlyList<string> CustomerTypes,
    IReadOnlyList<string>? CampaignIds = null,
    IReadOnlyList<string>? ProductIds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name = null)
{
    public static string DefaultName(int index) => "route" + (index + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);

    public string NameAt(int index) => Name ?? DefaultName(index);
}

public static class ExportTypes
{
    public const string Postback = "postback";
    public const string File = "file";
}

/// The body of POST /api/v1/export-profiles/import-mapping, for the OpenAPI document:
/// Konnektive's field mapping, {"exportName": "[field]" | "static value"}.
public sealed class KonnektiveMappingRequest : Dictionary<string, string>;
