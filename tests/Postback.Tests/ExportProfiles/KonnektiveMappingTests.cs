using System.Text.Json;
using Postback.ExportProfiles;

namespace Postback.Tests.ExportProfiles;

/// Konnektive's field-mapping JSON (seed 000) to and from a profile's mappings.
public sealed class KonnektiveMappingTests
{
    // Exactly as in seed 000.
    private const string SeedMapping = """
        {
          "country": "[country]",
          "product1_qty": "[product1_qty]",
          "orderId": "[orderId]",
          "state": "[state]",
          "product1_sku": "[product1_sku]",
          "shipAddress2": "[shipAddress2]",
          "address2": "[address2]",
          "firstName": "[firstName]",
          "shipState": "[shipState]",
          "phoneNumber": "[phoneNumber]",
          "customerType": "[customerType]",
          "shipCountry": "[shipCountry]",
          "organizationId": "your-org-id",
          "product1_name": "[product1_name]",
          "orderStatus": "[orderStatus]",
          "postalCode": "[postalCode]",
          "product1_price": "[product1_price]",
          "shipAddress1": "[shipAddress1]",
          "city": "[city]",
          "lastName": "[lastName]",
          "shipCity": "[shipCity]",
          "address1": "[address1]",
          "emailAddress": "[emailAddress]",
          "shipPostalCode": "[shipPostalCode]",
          "pluginInstanceId": "your-plugin-instance-id"
        }
        """;

    private static (List<ExportMapping> Mappings, Dictionary<string, string[]> Errors) Import(string json)
    {
        using var document = JsonDocument.Parse(json);
        var (mappings, errors) = KonnektiveMapping.Import(document.RootElement);
        return (mappings, new Dictionary<string, string[]>(errors.ToDictionary()));
    }

    private static ExportMapping F(string exportName, string field) => new(exportName, field);

    private static ExportMapping S(string exportName, string value) => new(exportName, null, value);

    [Fact]
    public void Seed_mapping_imports_into_25_mappings_in_order()
    {
        var (mappings, errors) = Import(SeedMapping);

        Assert.Empty(errors);
        Assert.Equal(25, mappings.Count);
        Assert.Equal(
            [
                F("country", "country"),
                F("product1_qty", "product1_qty"),
                F("orderId", "orderId"),
                F("state", "state"),
                F("product1_sku", "product1_sku"),
                F("shipAddress2", "shipAddress2"),
                F("address2", "address2"),
                F("firstName", "firstName"),
                F("shipState", "shipState"),
                F("phoneNumber", "phoneNumber"),
                F("customerType", "customerType"),
                F("shipCountry", "shipCountry"),
                S("organizationId", "your-org-id"),
                F("product1_name", "product1_name"),
                F("orderStatus", "orderStatus"),
                F("postalCode", "postalCode"),
                F("product1_price", "product1_price"),
                F("shipAddress1", "shipAddress1"),
                F("city", "city"),
                F("lastName", "lastName"),
                F("shipCity", "shipCity"),
                F("address1", "address1"),
                F("emailAddress", "emailAddress"),
                F("shipPostalCode", "shipPostalCode"),
                S("pluginInstanceId", "your-plugin-instance-id"),
            ],
            mappings);
        Assert.Equal(new ExportMapping("country", "country", null), mappings[0]);
        Assert.Equal(new ExportMapping("organizationId", null, "your-org-id"), mappings[12]);
    }

    public static TheoryData<string, ExportMapping> ValueCases => new()
    {
        // Exactly one bracketed merge tag: a field, brackets and surrounding spaces dropped.
        { "\"[country]\"", F("k", "country") },
        { "\"[firstName]\"", F("k", "firstName") },
        { "\"[ firstName ]\"", F("k", "firstName") },
        { "\"  [firstName]  \"", F("k", "firstName") },
        { "\"[product1_sku]\"", F("k", "product1_sku") },
        { "\"[affiliate_sub_id2]\"", F("k", "affiliate_sub_id2") },
        // Anything else: static, kept exactly.
        { "\"your-org-id\"", S("k", "your-org-id") },
        { "\"400\"", S("k", "400") },
        { "\"\"", S("k", "") },
        { "\"  padded  \"", S("k", "  padded  ") },
        { "\"firstName\"", S("k", "firstName") },
        { "\"[first-name]\"", S("k", "[first-name]") },
        { "\"[1abc]\"", S("k", "[1abc]") },
        { "\"[]\"", S("k", "[]") },
        { "\"[firstName][lastName]\"", S("k", "[firstName][lastName]") },
        { "\"Hello [firstName]\"", S("k", "Hello [firstName]") },
        { "\"[[firstName]]\"", S("k", "[[firstName]]") },
        { "\"application/json\"", S("k", "application/json") },
        { "\"José\"", S("k", "José") },
        // Numbers and booleans: static text.
        { "400", S("k", "400") },
        { "1.50", S("k", "1.50") },
        { "-2", S("k", "-2") },
        { "1e3", S("k", "1e3") },
        { "true", S("k", "1") },
        { "false", S("k", "0") },
    };

    [Theory]
    [MemberData(nameof(ValueCases))]
    public void Values_become_fields_or_static_values(string valueJson, ExportMapping expected)
    {
        var (mappings, errors) = Import($$"""{"k": {{valueJson}}}""");

        Assert.Empty(errors);
        Assert.Equal([expected], mappings);
    }

    [Theory]
    [InlineData("""{"a": {"x": 1}}""", "mapping.a")]
    [InlineData("""{"a": [1, 2]}""", "mapping.a")]
    [InlineData("""{"a": []}""", "mapping.a")]
    [InlineData("""{"a": null}""", "mapping.a")]
    [InlineData("""{"header:X-Api-Key": {"value": "k"}}""", "mapping.header:X-Api-Key")]
    public void Nested_values_are_errors(string json, string path)
    {
        var (_, errors) = Import(json);

        Assert.Equal([path], errors.Keys);
        Assert.Equal(["must be a \"[field]\" merge tag or a static string"], errors[path]);
    }

    // BUG (KonnektiveMapping.Import): p.Value.GetString() throws InvalidOperationException on a
    // lone surrogate escape, so POST .../import-mapping answers 500 instead of a field error.
    [Fact]
    public void A_lone_surrogate_is_a_field_error_not_an_exception()
    {
        var (mappings, errors) = Import("""{"first_name": "[firstName]", "bad": "\ud800"}""");

        Assert.Equal([F("first_name", "firstName")], mappings);
        Assert.Equal(["mapping.bad"], errors.Keys);
    }

    [Fact]
    public void Good_mappings_are_kept_and_every_bad_one_reported()
    {
        var (mappings, errors) = Import("""{"a": "[firstName]", "b": {"x": 1}, "c": "static", "d": [1]}""");

        Assert.Equal([F("a", "firstName"), S("c", "static")], mappings);
        Assert.Equal(["mapping.b", "mapping.d"], errors.Keys);
    }

    [Theory]
    [InlineData("[]", "must be a JSON object of export names to \"[field]\" or static values")]
    [InlineData("[{\"a\": \"[firstName]\"}]", "must be a JSON object of export names to \"[field]\" or static values")]
    [InlineData("\"first_name=[firstName]\"", "must be a JSON object of export names to \"[field]\" or static values")]
    [InlineData("42", "must be a JSON object of export names to \"[field]\" or static values")]
    [InlineData("null", "must be a JSON object of export names to \"[field]\" or static values")]
    [InlineData("{}", "holds no mappings")]
    public void Anything_but_a_non_empty_object_is_refused(string json, string reason)
    {
        var (mappings, errors) = Import(json);

        Assert.Empty(mappings);
        Assert.Equal(["mapping"], errors.Keys);
        Assert.Equal([reason], errors["mapping"]);
    }

    [Fact]
    public void Header_and_control_mappings_import_as_static_values()
    {
        var (mappings, errors) = Import("""
            {"header:Content-Type": "application/json", "header:httpMethod": "PUT", "first_name": "[firstName]", "list_id": 400}
            """);

        Assert.Empty(errors);
        Assert.Equal(
            [S("header:Content-Type", "application/json"), S("header:httpMethod", "PUT"), F("first_name", "firstName"), S("list_id", "400")],
            mappings);
    }

    // ---- Export ---------------------------------------------------------------------------------

    [Fact]
    public void Export_writes_fields_in_brackets_and_static_values_as_they_are()
    {
        var exported = KonnektiveMapping.Export([F("first_name", "firstName"), S("list_id", "400"), S("empty", ""), F("sku", "product1_sku"), new ExportMapping("neither")]);

        Assert.Equal(
            [
                new KeyValuePair<string, string>("first_name", "[firstName]"),
                new KeyValuePair<string, string>("list_id", "400"),
                new KeyValuePair<string, string>("empty", ""),
                new KeyValuePair<string, string>("sku", "[product1_sku]"),
                new KeyValuePair<string, string>("neither", ""),
            ],
            exported);
    }

    [Fact]
    public void Seed_mapping_round_trips_exactly()
    {
        var (mappings, _) = Import(SeedMapping);

        var exported = KonnektiveMapping.Export(mappings);

        using var seed = JsonDocument.Parse(SeedMapping);
        Assert.Equal(
            seed.RootElement.EnumerateObject().Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetString()!)),
            exported);

        var (again, errors) = Import(JsonSerializer.Serialize(exported));
        Assert.Empty(errors);
        Assert.Equal(mappings, again);
    }

    public static TheoryData<ExportMapping[]> RoundTripCases => new()
    {
        { [F("a", "firstName")] },
        { [S("a", "static value"), F("b", "product2_price"), S("c", ""), S("d", "José & co")] },
        { [S("header:X-Api-Key", "k"), S("header:httpMethod", "PATCH"), F("email", "emailAddress")] },
        { [S("weird", "[not-a-tag]"), S("number", "400")] },
    };

    [Theory]
    [MemberData(nameof(RoundTripCases))]
    public void Export_then_Import_gives_the_same_mappings(ExportMapping[] mappings)
    {
        var json = JsonSerializer.Serialize(KonnektiveMapping.Export(mappings));

        var (again, errors) = Import(json);

        Assert.Empty(errors);
        Assert.Equal(mappings, again);
    }
}
