using System.Text.Json.Nodes;
using Postback.Tests.Support;

namespace Postback.Tests.Observability;

/// The OpenAPI document the reference at /api/docs shows. A failure here names each operation
/// to fix: add .WithSummary("...") to its endpoint, answer with TypedResults (or declare
/// .Produces<T>()), and for a handler that reads its body itself (a JsonElement parameter),
/// add .WithMetadata(new DocumentedBodyAttribute(typeof(TheBodyRecord))).
public sealed class OpenApiTests : IAsyncLifetime
{
    private HubFactory _hub = null!;
    private JsonObject _document = null!;

    public async Task InitializeAsync()
    {
        _hub = await HubFactory.StartAsync();
        using var client = _hub.Api(key: null);
        _document = (await Json.ReadOkAsync(await client.GetAsync("/openapi/v1.json"))).AsObject();
    }

    public async Task DisposeAsync() => await _hub.DisposeAsync();

    private IEnumerable<(string Method, string Path, JsonObject Operation)> Operations() =>
        from path in _document["paths"]!.AsObject()
        from op in path.Value!.AsObject()
        where op.Key is "get" or "post" or "put" or "delete" or "patch"
        select (op.Key.ToUpperInvariant(), path.Key, op.Value!.AsObject());

    [Fact]
    public void The_document_declares_the_bearer_scheme_and_every_api_operation_requires_it()
    {
        var scheme = _document["components"]?["securitySchemes"]?["Bearer"];
        Assert.NotNull(scheme);
        Assert.Equal("http", scheme!["type"]!.GetValue<string>());
        Assert.Equal("bearer", scheme["scheme"]!.GetValue<string>());

        var unprotected = Operations()
            .Where(o => o.Path.StartsWith("/api/v1/", StringComparison.Ordinal) && !o.Path.StartsWith("/api/v1/plugins/webhooks/", StringComparison.Ordinal))
            .Where(o => o.Operation["security"]?.AsArray().Any(r => r!.AsObject().ContainsKey("Bearer")) != true)
            .Select(o => $"{o.Method} {o.Path}").ToList();
        Assert.True(unprotected.Count == 0, "operations without the Bearer requirement: " + string.Join(", ", unprotected));
        // The CRM's postback authenticates with the instance secret, not a Bearer key.
        Assert.All(Operations().Where(o => o.Path.StartsWith("/api/v1/plugins/webhooks/", StringComparison.Ordinal)),
            o => Assert.Null(o.Operation["security"]));
    }

    [Fact]
    public void Every_operation_has_a_summary()
    {
        var missing = Operations().Where(o => string.IsNullOrWhiteSpace(o.Operation["summary"]?.GetValue<string>()))
            .Select(o => $"{o.Method} {o.Path}").ToList();
        Assert.True(missing.Count == 0, "add .WithSummary(\"...\") to: " + string.Join(", ", missing));
    }

    [Fact]
    public void Every_request_and_answer_body_is_typed()
    {
        var problems = new List<string>();
        foreach (var (method, path, operation) in Operations())
        {
            if (operation["requestBody"]?["content"] is JsonObject requestContent)
            {
                foreach (var (type, media) in requestContent)
                {
                    Untyped(media?["schema"], $"{method} {path} request body ({type})", [], problems);
                }
            }
            foreach (var (code, response) in operation["responses"]?.AsObject() ?? [])
            {
                var content = response?["content"] as JsonObject;
                if (code is "200" or "201" or "202" && (content is null || content.Count == 0))
                {
                    problems.Add($"{method} {path} answers {code} with no declared body (use TypedResults or .Produces<T>())");
                }
                foreach (var (type, media) in content ?? [])
                {
                    Untyped(media?["schema"], $"{method} {path} answer {code} ({type})", [], problems);
                }
            }
        }
        Assert.True(problems.Count == 0, "untyped bodies:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void The_event_bodies_are_described_with_an_example_in_the_CRMs_field_names()
    {
        var events = _document["paths"]!["/api/v1/events"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!;
        var schema = Resolve(events);
        Assert.NotNull(schema["properties"]?["order"]);
        var example = schema["examples"]?[0] ?? events["examples"]?[0];
        Assert.NotNull(example);
        var order = example!["order"]!.AsObject();
        foreach (var field in (string[])["orderId", "customerId", "campaignId", "emailAddress", "firstName", "totalAmount", "items"])
        {
            Assert.True(order.ContainsKey(field), $"the example order has no {field}");
        }
        Assert.Equal("new_sale", example["type"]!.GetValue<string>());

        var batch = Resolve(_document["paths"]!["/api/v1/events/batch"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!);
        Assert.Equal("array", Resolve(batch["properties"]!["events"]!)["type"]!.GetValue<string>());
    }

    private JsonNode Resolve(JsonNode schema) =>
        schema["$ref"]?.GetValue<string>() is { } reference
            ? _document["components"]!["schemas"]![reference.Split('/')[^1]]!
            : schema;

    // A schema says what it is: a $ref to a component that does, a type, an enum or a union.
    private void Untyped(JsonNode? schema, string where, HashSet<string> seen, List<string> problems)
    {
        if (schema is not JsonObject s)
        {
            problems.Add($"{where}: no schema");
            return;
        }
        if (s["$ref"]?.GetValue<string>() is { } reference)
        {
            var name = reference.Split('/')[^1];
            if (seen.Add(name))
            {
                Untyped(_document["components"]?["schemas"]?[name], $"{where} -> {name}", seen, problems);
            }
            return;
        }
        if (!s.ContainsKey("type") && !s.ContainsKey("oneOf") && !s.ContainsKey("anyOf") && !s.ContainsKey("allOf") && !s.ContainsKey("enum") && !s.ContainsKey("const"))
        {
            problems.Add($"{where}: untyped schema {s.ToJsonString()}");
        }
        foreach (var (name, property) in s["properties"]?.AsObject() ?? [])
        {
            Untyped(property, $"{where}.{name}", seen, problems);
        }
        if (s["items"] is JsonObject items)
        {
            Untyped(items, where + "[]", seen, problems);
        }
        if (s["additionalProperties"] is JsonObject values)
        {
            Untyped(values, where + "{}", seen, problems);
        }
        foreach (var union in (string[])["oneOf", "anyOf", "allOf"])
        {
            foreach (var member in s[union]?.AsArray() ?? [])
            {
                Untyped(member, where, seen, problems);
            }
        }
    }
}
