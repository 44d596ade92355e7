using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.ExportProfiles;

/// One hub for the whole class, with a second organization ("Other") beside the bootstrap one.
public sealed class ExportProfilesApiTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private const string Profiles = "/api/v1/export-profiles";
    private const string QuestionMarkError = "Invalid Postback URL: cannot contain a question mark";

    private const string BaseProfile = """
        {
          "name": "Call center partials",
          "type": "postback",
          "postbackUrl": "https://postingmydata.com/partials.php",
          "exportDelayMinutes": 5,
          "enabled": true,
          "mappings": [
            {"exportName": "first_name", "field": "firstName"},
            {"exportName": "list_id", "static": "400"}
          ],
          "routes": [{"customerTypes": ["partial"], "campaignIds": [], "productIds": []}]
        }
        """;

    private HubFactory Hub => fixture.Hub;

    private HttpClient Api() => Hub.Api();

    private HttpClient Other() => Hub.Api(fixture.OtherKey);

    /// The valid profile above with some top-level properties replaced by the patch's.
    private static JsonObject Profile(string? patch = null)
    {
        var profile = JsonNode.Parse(BaseProfile)!.AsObject();
        if (patch is not null)
        {
            foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject())
            {
                profile[key] = value?.DeepClone();
            }
        }
        return profile;
    }

    private static string Mappings(int count) =>
        "[" + string.Join(",", Enumerable.Range(0, count).Select(i => $$"""{"exportName": "p{{i}}", "static": "v"}""")) + "]";

    private static string Routes(int count) =>
        "[" + string.Join(",", Enumerable.Range(0, count).Select(_ => """{"customerTypes": ["partial"]}""")) + "]";

    private Task<int> CountProfilesAsync() => Hub.WithDbAsync(db => db.ExportProfiles.CountAsync());

    private static string WithoutTimes(JsonNode profile)
    {
        var copy = profile.DeepClone().AsObject();
        copy.Remove("createdAt");
        copy.Remove("updatedAt");
        return copy.ToJsonString();
    }

    private async Task<long> CreateAsync(JsonObject profile, string? key = null)
    {
        var response = await Hub.Api(key ?? HubFactory.ApiKey).PostRawAsync(Profiles, profile.ToJsonString());
        var created = await ReadOkAsync(response, HttpStatusCode.Created);
        return created["id"]!.GetValue<long>();
    }

    private async Task CreateCampaignAsync(string campaignId, string? key = null, params string[] productIds)
    {
        var response = await Hub.Api(key ?? HubFactory.ApiKey).PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId,
            name = "Campaign " + campaignId,
            products = productIds.Select(p => new { productId = p, sku = "SKU-" + p, name = "Product " + p, price = 10m }).ToArray(),
        });
        await ReadOkAsync(response, HttpStatusCode.Created);
    }

    /// A refused create: the problem names the field, and no profile row was written.
    private async Task<string> AssertRefusedAsync(string body, string field, int status = 400, HttpClient? client = null)
    {
        var before = await CountProfilesAsync();
        var response = await (client ?? Api()).PostRawAsync(Profiles, body);
        var reason = await Json.AssertProblemAsync(response, status, field);
        Assert.Equal(before, await CountProfilesAsync());
        return reason;
    }

    // ---------------------------------------------------------------- CRUD

    [Fact]
    public async Task Create_get_list_put_delete_round_trip()
    {
        var api = Api();
        var create = Profile("""
            {
              "name": "  Round trip  ",
              "mappings": [
                {"exportName": " first_name ", "field": "[firstName]"},
                {"exportName": "list_id", "static": "400"},
                {"exportName": "header:Content-Type", "static": "application/json"},
                {"exportName": "header:httpMethod", "static": "put"}
              ]
            }
            """);
        var response = await api.PostRawAsync(Profiles, create.ToJsonString());
        var created = await ReadOkAsync(response, HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();
        Assert.Equal($"/api/v1/export-profiles/{id}", response.Headers.Location?.OriginalString);

        // Normalized: trimmed names, merge tag without brackets, method upper-case.
        Assert.Equal("Round trip", created["name"]!.GetValue<string>());
        Assert.Equal("postback", created["type"]!.GetValue<string>());
        Assert.Equal("https://postingmydata.com/partials.php", created["postbackUrl"]!.GetValue<string>());
        Assert.Equal(5, created["exportDelayMinutes"]!.GetValue<int>());
        Assert.True(created["enabled"]!.GetValue<bool>());
        var mappings = created["mappings"]!.AsArray();
        Assert.Equal(4, mappings.Count);
        Assert.Equal("first_name", mappings[0]!["exportName"]!.GetValue<string>());
        Assert.Equal("firstName", mappings[0]!["field"]!.GetValue<string>());
        Assert.Equal("400", mappings[1]!["static"]!.GetValue<string>());
        Assert.Equal("header:Content-Type", mappings[2]!["exportName"]!.GetValue<string>());
        Assert.Equal("PUT", mappings[3]!["static"]!.GetValue<string>());
        Assert.Equal("partial", created["routes"]![0]!["customerTypes"]![0]!.GetValue<string>());

        var got = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        Assert.Equal(WithoutTimes(created), WithoutTimes(got));
        // Stored times keep microseconds; the create answer may carry more precision.
        Assert.True((created["createdAt"]!.GetValue<DateTimeOffset>() - got["createdAt"]!.GetValue<DateTimeOffset>()).Duration() < TimeSpan.FromMilliseconds(1));

        var list = await ReadOkAsync(await api.GetAsync(Profiles));
        Assert.Contains(list.AsArray(), p => p!["id"]!.GetValue<long>() == id);

        var replacement = Profile("""
            {
              "name": "Round trip v2",
              "postbackUrl": "https://postingmydata.com/v2.php",
              "exportDelayMinutes": 0,
              "enabled": false,
              "mappings": [{"exportName": "email", "field": "emailAddress"}],
              "routes": [{"customerTypes": ["new_sale", "upsell"]}]
            }
            """);
        var put = await ReadOkAsync(await api.PutAsync($"{Profiles}/{id}", new StringContent(replacement.ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        Assert.Equal(id, put["id"]!.GetValue<long>());
        Assert.Equal("Round trip v2", put["name"]!.GetValue<string>());
        Assert.False(put["enabled"]!.GetValue<bool>());
        Assert.Single(put["mappings"]!.AsArray());
        Assert.Equal(new[] { "new_sale", "upsell" }, put["routes"]![0]!["customerTypes"]!.AsArray().Select(t => t!.GetValue<string>()));

        var afterPut = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        Assert.Equal("https://postingmydata.com/v2.php", afterPut["postbackUrl"]!.GetValue<string>());
        Assert.Equal(0, afterPut["exportDelayMinutes"]!.GetValue<int>());

        var delete = await api.DeleteAsync($"{Profiles}/{id}");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await AssertNotFoundAsync(await api.GetAsync($"{Profiles}/{id}"));
        await AssertNotFoundAsync(await api.DeleteAsync($"{Profiles}/{id}"));
        Assert.False(await Hub.WithDbAsync(db => db.ExportProfiles.AnyAsync(p => p.Id == id)));
    }

    [Fact]
    public async Task Unknown_profile_is_404_problem()
    {
        var api = Api();
        await AssertNotFoundAsync(await api.GetAsync($"{Profiles}/987654"));
        await AssertNotFoundAsync(await api.PutAsync($"{Profiles}/987654", new StringContent(Profile().ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        await AssertNotFoundAsync(await api.DeleteAsync($"{Profiles}/987654"));
        await AssertNotFoundAsync(await api.PostJsonAsync($"{Profiles}/987654/preview", new { order = new { orderId = 1 } }));
    }

    // ---------------------------------------------------------------- validation

    [Fact]
    public async Task Url_with_a_question_mark_is_refused_in_Konnektives_words()
    {
        var body = Profile("""{"postbackUrl": "https://postingmydata.com/partials.php?list_id=400"}""").ToJsonString();
        var before = await CountProfilesAsync();
        var response = await Api().PostRawAsync(Profiles, body);
        var reason = await Json.AssertProblemAsync(response, 400, "postbackUrl");
        Assert.Equal(QuestionMarkError, reason);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("postbackUrl: " + QuestionMarkError, problem["detail"]!.GetValue<string>());
        Assert.Equal(400, problem["status"]!.GetValue<int>());
        Assert.Equal(before, await CountProfilesAsync());
    }

    public static TheoryData<string, string, string> InvalidProfiles
    {
        get
        {
            var data = new TheoryData<string, string, string>
            {
                // name
                { """{"name": ""}""", "name", "is required" },
                { """{"name": "   "}""", "name", "is required" },
                { """{"name": null}""", "name", "is required" },
                { """{"name": "Partials\u0007"}""", "name", "without control characters" },
                { $$"""{"name": "{{new string('n', 201)}}"}""", "name", "at most 200 characters" },
                // type
                { """{"type": "webhook"}""", "type", "must be postback" },
                // postbackUrl
                { """{"postbackUrl": null}""", "postbackUrl", "is required" },
                { """{"postbackUrl": "  "}""", "postbackUrl", "is required" },
                { """{"postbackUrl": "https://postingmydata.com/partials.php?"}""", "postbackUrl", QuestionMarkError },
                { """{"postbackUrl": "https://postingmydata.com/partials.php?a=1&b=2"}""", "postbackUrl", QuestionMarkError },
                { """{"postbackUrl": "javascript:alert(1)"}""", "postbackUrl", "must be an http or https URL, not javascript:" },
                { """{"postbackUrl": "ftp://x"}""", "postbackUrl", "must be an http or https URL, not ftp:" },
                { """{"postbackUrl": "file:///etc/passwd"}""", "postbackUrl", "must be an http or https URL, not file:" },
                { """{"postbackUrl": "data:text/html,hello"}""", "postbackUrl", "must be an http or https URL, not data:" },
                { """{"postbackUrl": "/partials.php"}""", "postbackUrl", "must be an absolute http or https URL" },
                { """{"postbackUrl": "partials.php"}""", "postbackUrl", "must be an absolute http or https URL" },
                { """{"postbackUrl": "//postingmydata.com/partials.php"}""", "postbackUrl", "must be an absolute http or https URL" },
                { """{"postbackUrl": "https://user:pass@postingmydata.com/partials.php"}""", "postbackUrl", "must not contain a user name or password" },
                { """{"postbackUrl": "https://postingmydata.com/partials.php#top"}""", "postbackUrl", "must not contain a fragment (#)" },
                { """{"postbackUrl": "https://postingmydata.com/my partials.php"}""", "postbackUrl", "must not contain spaces or control characters" },
                { $$"""{"postbackUrl": "https://postingmydata.com/{{new string('a', 2030)}}"}""", "postbackUrl", "at most 2048 characters" },
                // exportDelayMinutes
                { """{"exportDelayMinutes": -1}""", "exportDelayMinutes", "must be from 0 to 43200 minutes" },
                { """{"exportDelayMinutes": 43201}""", "exportDelayMinutes", "must be from 0 to 43200 minutes" },
                // mappings
                { """{"mappings": [{"exportName": "first_name", "field": "firstName"}, {"exportName": "first_name", "static": "x"}]}""", "mappings[1].exportName", "repeats mappings[0].exportName; export names must be unique" },
                { """{"mappings": [{"exportName": "a", "static": "1"}, {"exportName": "b", "static": "2"}, {"exportName": " a ", "field": "lastName"}]}""", "mappings[2].exportName", "repeats mappings[0].exportName" },
                { """{"mappings": [null]}""", "mappings[0]", "must be an object" },
                { """{"mappings": [{"field": "firstName"}]}""", "mappings[0].exportName", "is required" },
                { """{"mappings": [{"exportName": "  ", "static": "x"}]}""", "mappings[0].exportName", "is required" },
                { """{"mappings": [{"exportName": "first\tname", "static": "x"}]}""", "mappings[0].exportName", "without control characters" },
                { $$"""{"mappings": [{"exportName": "{{new string('e', 129)}}", "static": "x"}]}""", "mappings[0].exportName", "at most 128 characters" },
                { """{"mappings": [{"exportName": "a", "field": "firstName", "static": "x"}]}""", "mappings[0]", "give either field or static, not both" },
                { """{"mappings": [{"exportName": "a"}]}""", "mappings[0]", "needs a field" },
                { """{"mappings": [{"exportName": "a", "field": "first name"}]}""", "mappings[0].field", "must be a merge tag" },
                { """{"mappings": [{"exportName": "a", "field": "[first-name]"}]}""", "mappings[0].field", "must be a merge tag" },
                { """{"mappings": [{"exportName": "a", "field": "[product101_sku]"}]}""", "mappings[0].field", "product lines run from 1 to 100" },
                { $$"""{"mappings": [{"exportName": "a", "static": "{{new string('s', 2001)}}"}]}""", "mappings[0].static", "at most 2000 characters" },
                { $$"""{"mappings": {{Mappings(201)}}}""", "mappings", "at most 200 mappings" },
                // header: mappings
                { """{"mappings": [{"exportName": "header:X-Api-Key", "field": "firstName"}]}""", "mappings[0].field", "header: mappings take a static value, not a field" },
                { """{"mappings": [{"exportName": "header:X-Api-Key", "static": "abc\r\nX-Injected: 1"}]}""", "mappings[0].static", "must not contain CR or LF" },
                { """{"mappings": [{"exportName": "header:X-Api-Key", "static": "abc\nX-Injected: 1"}]}""", "mappings[0].static", "must not contain CR or LF" },
                { """{"mappings": [{"exportName": "header:X-Api-Key", "static": "abc\r"}]}""", "mappings[0].static", "must not contain CR or LF" },
                { """{"mappings": [{"exportName": "header:X-Api-Key", "static": "abc\u0000def"}]}""", "mappings[0].static", "without control characters" },
                { $$"""{"mappings": [{"exportName": "header:X-Api-Key", "static": "{{new string('k', 2001)}}"}]}""", "mappings[0].static", "at most 2000 characters" },
                { """{"mappings": [{"exportName": "header:Host", "static": "evil.example"}]}""", "mappings[0].exportName", "the Host header is set by Postback itself" },
                { """{"mappings": [{"exportName": "header:Content-Length", "static": "0"}]}""", "mappings[0].exportName", "the Content-Length header is set by Postback itself" },
                { """{"mappings": [{"exportName": "header:transfer-encoding", "static": "chunked"}]}""", "mappings[0].exportName", "is set by Postback itself" },
                { """{"mappings": [{"exportName": "HEADER:Connection", "static": "close"}]}""", "mappings[0].exportName", "is set by Postback itself" },
                { """{"mappings": [{"exportName": "header:", "static": "x"}]}""", "mappings[0].exportName", "header: must be followed by a header name" },
                { """{"mappings": [{"exportName": "header:X Api Key", "static": "x"}]}""", "mappings[0].exportName", "header: must be followed by a header name" },
                { """{"mappings": [{"exportName": "header:X-Key:", "static": "x"}]}""", "mappings[0].exportName", "header: must be followed by a header name" },
                { """{"mappings": [{"exportName": "header:X-Key", "static": "a"}, {"exportName": "header:x-key", "static": "b"}]}""", "mappings[1].exportName", "repeats mappings[0].exportName (header names are case-insensitive)" },
                { """{"mappings": [{"exportName": "header:httpMethod", "static": "GET"}]}""", "mappings[0].static", "header:httpMethod must be one of POST, PUT, PATCH, DELETE" },
                { """{"mappings": [{"exportName": "header:httpMethod", "static": "FETCH"}]}""", "mappings[0].static", "header:httpMethod must be one of POST, PUT, PATCH, DELETE" },
                { """{"mappings": [{"exportName": "header:httpMethod", "field": "orderStatus"}]}""", "mappings[0].field", "header: mappings take a static value, not a field" },
                { """{"mappings": [{"exportName": "header:httpMethodType", "static": "PUT"}]}""", "mappings[0].static", "header:httpMethodType must be GET (parameters in the URL) or POST (parameters in the body)" },
                { """{"mappings": [{"exportName": "header:httpMethodType", "static": ""}]}""", "mappings[0].static", "header:httpMethodType must be GET" },
                // Standard Webhooks signing secret
                { """{"signingSecret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}""", "signingSecret", "must start with whsec_" },
                { """{"signingSecret": "whsec_not base64!"}""", "signingSecret", "base64 of 24 to 64 random bytes" },
                { """{"signingSecret": "whsec_c2hvcnQ="}""", "signingSecret", "base64 of 24 to 64 random bytes" },
                // routes
                { """{"routes": [null]}""", "routes[0]", "must be an object" },
                { """{"routes": [{"customerTypes": []}]}""", "routes[0].customerTypes", "needs at least one customer type" },
                { """{"routes": [{"campaignIds": []}]}""", "routes[0].customerTypes", "needs at least one customer type" },
                { """{"routes": [{"customerTypes": ["partial", "sale"]}]}""", "routes[0].customerTypes[1]", "'sale' is not a customer type; use one of partial, lead, abandoned_cart, new_sale" },
                { """{"routes": [{"customerTypes": ["Partial"]}]}""", "routes[0].customerTypes[0]", "'Partial' is not a customer type" },
                { """{"routes": [{"customerTypes": ["partial"]}, {"customerTypes": ["newsale"]}]}""", "routes[1].customerTypes[0]", "'newsale' is not a customer type" },
                { """{"routes": [{"customerTypes": [null]}]}""", "routes[0].customerTypes[0]", "is not a customer type" },
                { """{"routes": [{"customerTypes": ["partial"], "campaignIds": ["no-such-campaign"]}]}""", "routes[0].campaignIds[0]", "there is no campaign 'no-such-campaign'" },
                { """{"routes": [{"customerTypes": ["partial"], "productIds": ["no-such-product"]}]}""", "routes[0].productIds[0]", "there is no product 'no-such-product'" },
                { $$"""{"routes": {{Routes(101)}}}""", "routes", "at most 100 routes" },
            };
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(InvalidProfiles))]
    public async Task Invalid_profile_is_refused_naming_the_field_and_nothing_is_stored(string patch, string field, string reason)
    {
        var given = await AssertRefusedAsync(Profile(patch).ToJsonString(), field);
        Assert.Contains(reason, given, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Several_errors_are_all_named()
    {
        var body = Profile("""
            {
              "name": "",
              "postbackUrl": "javascript:alert(1)",
              "exportDelayMinutes": -5,
              "mappings": [{"exportName": "header:Host", "static": "x"}],
              "routes": [{"customerTypes": ["bogus"]}]
            }
            """).ToJsonString();
        var before = await CountProfilesAsync();
        var response = await Api().PostRawAsync(Profiles, body);
        await Json.AssertProblemAsync(response, 400, "name");
        var errors = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!.AsObject();
        Assert.Equal(new[] { "name", "postbackUrl", "exportDelayMinutes", "mappings[0].exportName", "routes[0].customerTypes[0]" }, errors.Select(e => e.Key));
        Assert.Equal(before, await CountProfilesAsync());
    }

    public static TheoryData<string, string, string> UnbindableProfiles => new()
    {
        // Misspelt properties are errors, not silently ignored.
        { """{"mappings": [{"exportName": "first_name", "fild": "firstName"}]}""", "mappings[0].fild", "is not a known field" },
        { """{"mappings": [{"exportName": "list_id", "staticValue": "400"}]}""", "mappings[0].staticValue", "is not a known field" },
        { """{"nmae": "Partials"}""", "nmae", "is not a known field" },
        { """{"routes": [{"customerTypes": ["partial"], "campaigns": ["259"]}]}""", "routes[0].campaigns", "is not a known field" },
        // Wrong JSON types.
        { """{"exportDelayMinutes": "five"}""", "exportDelayMinutes", "has the wrong type" },
        { """{"exportDelayMinutes": 1.5}""", "exportDelayMinutes", "has the wrong type" },
        { """{"enabled": "yes"}""", "enabled", "has the wrong type" },
        { """{"mappings": {"first_name": "[firstName]"}}""", "mappings", "has the wrong type" },
        { """{"routes": [{"customerTypes": "partial"}]}""", "routes[0].customerTypes", "has the wrong type" },
    };

    [Theory]
    [MemberData(nameof(UnbindableProfiles))]
    public async Task Misspelt_or_mistyped_property_is_refused_naming_it(string patch, string field, string reason)
    {
        var given = await AssertRefusedAsync(Profile(patch).ToJsonString(), field);
        Assert.Equal(reason, given);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("""{"name": }""")]
    [InlineData("""{"name": "x",}""")]
    [InlineData("not json")]
    [InlineData("""{"name": "x"} trailing""")]
    [InlineData("[]")]
    [InlineData("\"a string\"")]
    public async Task Malformed_json_is_refused_and_nothing_is_stored(string body)
    {
        var before = await CountProfilesAsync();
        var response = await Api().PostRawAsync(Profiles, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected 400, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!;
        Assert.NotEmpty(problem["errors"]!.AsObject());
        Assert.False(string.IsNullOrWhiteSpace(problem["detail"]?.GetValue<string>()));
        Assert.Equal(before, await CountProfilesAsync());
    }

    [Fact]
    public async Task Empty_body_is_refused_naming_the_body()
    {
        var before = await CountProfilesAsync();
        var response = await Api().PostAsync(Profiles, new StringContent("", System.Text.Encoding.UTF8, "application/json"));
        await Json.AssertProblemAsync(response, 400, "body");
        Assert.Equal(before, await CountProfilesAsync());
    }

    [Fact]
    public async Task Json_null_body_is_refused()
    {
        var reason = await AssertRefusedAsync("null", "body");
        Assert.DoesNotContain("Postback.", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Body_that_is_not_json_content_is_refused_with_415()
    {
        var before = await CountProfilesAsync();
        var response = await Api().PostAsync(Profiles, new StringContent(Profile().ToJsonString(), System.Text.Encoding.UTF8, "text/plain"));
        await Json.AssertProblemAsync(response, 415, "body");
        Assert.Equal(before, await CountProfilesAsync());
    }

    [Fact]
    public async Task Oversized_body_is_refused_with_413_and_nothing_is_stored()
    {
        // Over the hub's 1 MiB request limit: a static value far past its own limit too, but the
        // size limit answers first.
        var body = Profile($$"""{"mappings": [{"exportName": "a", "static": "{{new string('x', 1_100_000)}}"}]}""").ToJsonString();
        var reason = await AssertRefusedAsync(body, "body", 413);
        Assert.Contains("larger", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Route_may_not_name_another_organizations_campaign_or_product()
    {
        await CreateCampaignAsync("259", fixture.OtherKey, "P-OTHER-259");

        var reason = await AssertRefusedAsync(
            Profile("""{"routes": [{"customerTypes": ["partial"], "campaignIds": ["259"]}]}""").ToJsonString(),
            "routes[0].campaignIds[0]");
        Assert.Contains("there is no campaign '259'", reason, StringComparison.Ordinal);

        reason = await AssertRefusedAsync(
            Profile("""{"routes": [{"customerTypes": ["partial"], "productIds": ["P-OTHER-259"]}]}""").ToJsonString(),
            "routes[0].productIds[0]");
        Assert.Contains("there is no product 'P-OTHER-259'", reason, StringComparison.Ordinal);

        // The other organization itself may route it.
        await CreateAsync(Profile("""{"routes": [{"customerTypes": ["partial"], "campaignIds": ["259"], "productIds": ["P-OTHER-259"]}]}"""), fixture.OtherKey);

        // Once this organization has a campaign 259 of its own, the same route is accepted.
        await CreateCampaignAsync("259", null, "P-OWN-259");
        var id = await CreateAsync(Profile("""{"routes": [{"customerTypes": ["partial"], "campaignIds": [" 259 "], "productIds": ["P-OWN-259"]}]}"""));
        var got = await ReadOkAsync(await Api().GetAsync($"{Profiles}/{id}"));
        Assert.Equal("259", got["routes"]![0]!["campaignIds"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task Refused_put_leaves_the_profile_unchanged()
    {
        var api = Api();
        var id = await CreateAsync(Profile("""{"name": "Unchanged by bad PUT"}"""));
        var original = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));

        var cases = new (string Body, string Field)[]
        {
            (Profile("""{"postbackUrl": "https://postingmydata.com/partials.php?x=1"}""").ToJsonString(), "postbackUrl"),
            (Profile("""{"mappings": [{"exportName": "header:X-Key", "static": "a\r\nb"}]}""").ToJsonString(), "mappings[0].static"),
            (Profile("""{"routes": [{"customerTypes": ["nope"]}]}""").ToJsonString(), "routes[0].customerTypes[0]"),
            (Profile("""{"exportDelayMinutes": -1}""").ToJsonString(), "exportDelayMinutes"),
            (Profile("""{"mappings": [{"exportName": "a", "fild": "firstName"}]}""").ToJsonString(), "mappings[0].fild"),
        };
        foreach (var (body, field) in cases)
        {
            var response = await api.PutAsync($"{Profiles}/{id}", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            await Json.AssertProblemAsync(response, 400, field);
        }
        var malformed = await api.PutAsync($"{Profiles}/{id}", new StringContent("{\"name\":", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Equal("application/problem+json", malformed.Content.Headers.ContentType?.MediaType);

        var after = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        Assert.Equal(original.ToJsonString(), after.ToJsonString());
    }

    [Fact]
    public async Task Private_and_loopback_urls_are_refused_unless_allowed()
    {
        await using var strict = await HubFactory.StartAsync(allowPrivateNetworks: false);
        var api = strict.Api();
        foreach (var url in new[] { "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://0.0.0.0/hook" })
        {
            var response = await api.PostRawAsync(Profiles, Profile($$"""{"postbackUrl": "{{url}}"}""").ToJsonString());
            var reason = await Json.AssertProblemAsync(response, 400, "postbackUrl");
            Assert.Contains("private or loopback", reason, StringComparison.Ordinal);
        }
        Assert.Equal(0, await strict.WithDbAsync(db => db.ExportProfiles.CountAsync()));

        // The default test hub allows them (as Development does).
        await CreateAsync(Profile("""{"postbackUrl": "http://127.0.0.1:8080/hook"}"""));
    }

    // ---------------------------------------------------------------- organizations

    [Fact]
    public async Task Another_organization_never_sees_or_changes_a_profile()
    {
        var id = await CreateAsync(Profile("""{"name": "Private to the bootstrap organization"}"""));
        var other = Other();

        var list = await ReadOkAsync(await other.GetAsync(Profiles));
        Assert.DoesNotContain(list.AsArray(), p => p!["id"]!.GetValue<long>() == id);
        await AssertNotFoundAsync(await other.GetAsync($"{Profiles}/{id}"));
        await AssertNotFoundAsync(await other.PutAsync($"{Profiles}/{id}", new StringContent(Profile("""{"name": "Hijacked"}""").ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        await AssertNotFoundAsync(await other.DeleteAsync($"{Profiles}/{id}"));
        await AssertNotFoundAsync(await other.PostJsonAsync($"{Profiles}/{id}/preview", new { order = new { orderId = 77 } }));
        await AssertNotFoundAsync(await other.PostRawAsync($"{Profiles}/import-mapping?profileId={id}", """{"first_name": "[firstName]"}"""));

        var stillThere = await ReadOkAsync(await Api().GetAsync($"{Profiles}/{id}"));
        Assert.Equal("Private to the bootstrap organization", stillThere["name"]!.GetValue<string>());
        Assert.Equal(2, stillThere["mappings"]!.AsArray().Count);
    }

    // ---------------------------------------------------------------- Konnektive mapping import

    [Fact]
    public async Task Import_mapping_converts_konnektive_json()
    {
        var before = await CountProfilesAsync();
        var response = await Api().PostRawAsync($"{Profiles}/import-mapping", """
            {
              "first_name": "[firstName]",
              "last_name": "[ lastName ]",
              "order_date": "[orderDate]",
              "list_id": "400",
              "campaign_number": 259,
              "subscribe": true,
              "note": "[not a tag]",
              "header:Content-Type": "application/json"
            }
            """);
        var view = await ReadOkAsync(response);
        var mappings = view["mappings"]!.AsArray();
        Assert.Equal(8, mappings.Count);
        Assert.Equal(new[] { "first_name", "last_name", "order_date", "list_id", "campaign_number", "subscribe", "note", "header:Content-Type" },
            mappings.Select(m => m!["exportName"]!.GetValue<string>()));
        Assert.Equal("firstName", mappings[0]!["field"]!.GetValue<string>());
        Assert.Equal("lastName", mappings[1]!["field"]!.GetValue<string>());
        Assert.Equal("orderDate", mappings[2]!["field"]!.GetValue<string>());
        Assert.Equal("400", mappings[3]!["static"]!.GetValue<string>());
        Assert.Null(mappings[3]!["field"]);
        Assert.Equal("259", mappings[4]!["static"]!.GetValue<string>());
        Assert.Equal("1", mappings[5]!["static"]!.GetValue<string>());
        Assert.Equal("[not a tag]", mappings[6]!["static"]!.GetValue<string>());
        Assert.Equal("application/json", mappings[7]!["static"]!.GetValue<string>());
        Assert.Null(view["profile"]);
        Assert.Equal(before, await CountProfilesAsync());
    }

    [Fact]
    public async Task Import_mapping_with_profile_id_replaces_that_profiles_mappings()
    {
        var api = Api();
        var id = await CreateAsync(Profile("""{"name": "Import target"}"""));
        var response = await api.PostRawAsync($"{Profiles}/import-mapping?profileId={id}", """
            {"email_address": "[emailAddress]", "list_id": "401"}
            """);
        var view = await ReadOkAsync(response);
        Assert.Equal(id, view["profile"]!["id"]!.GetValue<long>());
        Assert.Equal(2, view["mappings"]!.AsArray().Count);

        var got = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        var mappings = got["mappings"]!.AsArray();
        Assert.Equal(2, mappings.Count);
        Assert.Equal("email_address", mappings[0]!["exportName"]!.GetValue<string>());
        Assert.Equal("emailAddress", mappings[0]!["field"]!.GetValue<string>());
        Assert.Equal("list_id", mappings[1]!["exportName"]!.GetValue<string>());
        Assert.Equal("401", mappings[1]!["static"]!.GetValue<string>());
        // The rest of the profile is kept.
        Assert.Equal("Import target", got["name"]!.GetValue<string>());
        Assert.Equal("partial", got["routes"]![0]!["customerTypes"]![0]!.GetValue<string>());
    }

    public static TheoryData<string, string, string> InvalidImports => new()
    {
        { """{"first_name": ["x"]}""", "mapping.first_name", "must be a \"[field]\" merge tag or a static string" },
        { """{"first_name": {"field": "firstName"}}""", "mapping.first_name", "must be a \"[field]\" merge tag or a static string" },
        { """{"first_name": null}""", "mapping.first_name", "must be a \"[field]\" merge tag or a static string" },
        { """["first_name"]""", "mapping", "must be a JSON object" },
        { "\"first_name\"", "mapping", "must be a JSON object" },
        { "{}", "mapping", "holds no mappings" },
        { """{"header:Host": "evil.example"}""", "mapping.header:Host", "the Host header is set by Postback itself" },
        { """{"header:X-Key": "a\r\nb"}""", "mapping.header:X-Key", "must not contain CR or LF" },
        { """{"first": "[firstName]", "header:httpMethod": "GET"}""", "mapping.header:httpMethod", "header:httpMethod must be one of" },
        { """{"a": "[product101_sku]"}""", "mapping.a", "product lines run from 1 to 100" },
    };

    [Theory]
    [MemberData(nameof(InvalidImports))]
    public async Task Import_mapping_refuses_a_bad_value_naming_its_key(string body, string field, string reason)
    {
        var response = await Api().PostRawAsync($"{Profiles}/import-mapping", body);
        var given = await Json.AssertProblemAsync(response, 400, field);
        Assert.Contains(reason, given, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_mapping_refused_for_a_profile_leaves_it_unchanged()
    {
        var api = Api();
        var id = await CreateAsync(Profile("""{"name": "Import kept"}"""));
        var original = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));

        var response = await api.PostRawAsync($"{Profiles}/import-mapping?profileId={id}", """{"first_name": "[firstName]", "bad": [1, 2]}""");
        await Json.AssertProblemAsync(response, 400, "mapping.bad");
        response = await api.PostRawAsync($"{Profiles}/import-mapping?profileId={id}", """{"first_name": "[firstName]", "header:Content-Length": "1"}""");
        await Json.AssertProblemAsync(response, 400, "mapping.header:Content-Length");
        response = await api.PostRawAsync($"{Profiles}/import-mapping?profileId={id}", "{\"first_name\": ");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);

        var after = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        Assert.Equal(original.ToJsonString(), after.ToJsonString());
    }

    [Fact]
    public async Task Import_mapping_with_a_non_numeric_profile_id_names_it()
    {
        var before = await CountProfilesAsync();
        var response = await Api().PostRawAsync($"{Profiles}/import-mapping?profileId=abc", """{"first_name": "[firstName]"}""");
        await Json.AssertProblemAsync(response, 400, "profileId");
        Assert.Equal(before, await CountProfilesAsync());
    }

    [Fact]
    public async Task Import_mapping_for_an_unknown_profile_is_404()
    {
        await AssertNotFoundAsync(await Api().PostRawAsync($"{Profiles}/import-mapping?profileId=999999", """{"first_name": "[firstName]"}"""));
    }

    // ---------------------------------------------------------------- preview

    private const string PreviewMappings = """
        [
          {"exportName": "first_name", "field": "firstName"},
          {"exportName": "last_name", "field": "lastName"},
          {"exportName": "order_date", "field": "orderDate"},
          {"exportName": "list_id", "static": "400"},
          {"exportName": "email_address", "field": "emailAddress"},
          {"exportName": "campaign_number", "field": "campaignId"},
          {"exportName": "customer_type", "field": "customerType"}
        ]
        """;

    private async Task<long> CreatePreviewProfileAsync(string campaignId)
    {
        await CreateCampaignAsync(campaignId);
        return await CreateAsync(Profile($$"""
            {
              "name": "Preview {{campaignId}}",
              "mappings": {{PreviewMappings}},
              "routes": [{"customerTypes": ["partial"], "campaignIds": ["{{campaignId}}"]}]
            }
            """));
    }

    [Fact]
    public async Task Preview_renders_an_inline_order()
    {
        var id = await CreatePreviewProfileAsync("PV-INLINE");
        var response = await Api().PostRawAsync($"{Profiles}/{id}/preview", """
            {
              "customerType": "partial",
              "order": {
                "orderId": 5001, "firstName": "Jane", "lastName": "Doe", "dateCreated": "2024-07-31 16:24:58",
                "emailAddress": "jane@example.com", "campaignId": "PV-INLINE"
              }
            }
            """);
        var preview = await ReadOkAsync(response);
        Assert.Equal("partial", preview["customerType"]!.GetValue<string>());
        Assert.Equal("partial", preview["routing"]!["eventType"]!.GetValue<string>());
        Assert.True(preview["routing"]!["fires"]!.GetValue<bool>());
        Assert.Equal("partial", preview["routing"]!["firedCustomerType"]!.GetValue<string>());
        var request = preview["request"]!;
        Assert.Equal("GET", request["method"]!.GetValue<string>());
        Assert.Equal(
            "https://postingmydata.com/partials.php?first_name=Jane&last_name=Doe&order_date=2024-07-31%2016%3A24%3A58&list_id=400&email_address=jane%40example.com&campaign_number=PV-INLINE&customer_type=partial",
            request["url"]!.GetValue<string>());
        Assert.Null(request["body"]);
        Assert.Empty(request["headers"]!.AsArray());
        var raw = request["raw"]!.GetValue<string>();
        Assert.StartsWith("GET /partials.php?first_name=Jane&last_name=Doe&", raw, StringComparison.Ordinal);
        Assert.Contains(" HTTP/1.1\r\nHost: postingmydata.com\r\n", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preview_renders_a_stored_order()
    {
        var id = await CreatePreviewProfileAsync("PV-STORED");
        var ingest = await Api().PostJsonAsync("/api/v1/events", new
        {
            eventId = "pv-stored-1",
            type = "partial",
            order = new { orderId = 5002, firstName = "Stored", lastName = "Order", emailAddress = "stored@example.com", campaignId = "PV-STORED", dateCreated = "2024-08-01 09:00:00" },
        });
        Assert.Equal(HttpStatusCode.Accepted, ingest.StatusCode);

        // No customerType: the profile's first route's first type.
        var preview = await ReadOkAsync(await Api().PostJsonAsync($"{Profiles}/{id}/preview", new { orderId = 5002 }));
        Assert.True(preview["routing"]!["fires"]!.GetValue<bool>());
        Assert.Equal("partial", preview["routing"]!["eventType"]!.GetValue<string>());
        Assert.Equal(
            "https://postingmydata.com/partials.php?first_name=Stored&last_name=Order&order_date=2024-08-01%2009%3A00%3A00&list_id=400&email_address=stored%40example.com&campaign_number=PV-STORED&customer_type=partial",
            preview["request"]!["url"]!.GetValue<string>());

        // An order that was never stored.
        await AssertNotFoundAsync(await Api().PostJsonAsync($"{Profiles}/{id}/preview", new { orderId = 5999 }));
    }

    [Fact]
    public async Task Preview_explains_when_no_route_matches()
    {
        var id = await CreatePreviewProfileAsync("PV-NOMATCH");
        var api = Api();

        var otherCampaign = await ReadOkAsync(await api.PostJsonAsync($"{Profiles}/{id}/preview", new
        {
            customerType = "partial",
            order = new { orderId = 5003, firstName = "Jane", campaignId = "SOMETHING-ELSE" },
        }));
        Assert.False(otherCampaign["routing"]!["fires"]!.GetValue<bool>());
        Assert.Null(otherCampaign["routing"]!["firedCustomerType"]);
        Assert.Equal("No route matches a partial event for this order (customer type, campaign or product).", otherCampaign["routing"]!["explanation"]!.GetValue<string>());
        // The request is still shown.
        Assert.StartsWith("https://postingmydata.com/partials.php?first_name=Jane&", otherCampaign["request"]!["url"]!.GetValue<string>(), StringComparison.Ordinal);

        var otherType = await ReadOkAsync(await api.PostJsonAsync($"{Profiles}/{id}/preview", new
        {
            customerType = "new_sale",
            order = new { orderId = 5003, campaignId = "PV-NOMATCH" },
        }));
        Assert.False(otherType["routing"]!["fires"]!.GetValue<bool>());
        Assert.Equal("new_sale", otherType["routing"]!["eventType"]!.GetValue<string>());
        Assert.Contains("No route matches a new_sale event", otherType["routing"]!["explanation"]!.GetValue<string>(), StringComparison.Ordinal);

        var testCard = await ReadOkAsync(await api.PostJsonAsync($"{Profiles}/{id}/preview", new
        {
            customerType = "partial",
            order = new { orderId = 5003, campaignId = "PV-NOMATCH", isTestCard = true },
        }));
        Assert.False(testCard["routing"]!["fires"]!.GetValue<bool>());
        Assert.Equal("Test card orders never export.", testCard["routing"]!["explanation"]!.GetValue<string>());

        var noRoutes = await CreateAsync(Profile("""{"name": "No routes", "routes": []}"""));
        var none = await ReadOkAsync(await api.PostJsonAsync($"{Profiles}/{noRoutes}/preview", new { order = new { orderId = 5003 } }));
        Assert.False(none["routing"]!["fires"]!.GetValue<bool>());
        Assert.Equal("new_sale", none["routing"]!["eventType"]!.GetValue<string>());
        Assert.Equal("The profile has no routes, so it exports nothing.", none["routing"]!["explanation"]!.GetValue<string>());
    }

    [Fact]
    public async Task Preview_shows_headers_json_body_and_method_controls()
    {
        var api = Api();
        var json = await CreateAsync(Profile("""
            {
              "mappings": [
                {"exportName": "first_name", "field": "firstName"},
                {"exportName": "header:Content-Type", "static": "application/json"},
                {"exportName": "header:X-Api-Key", "static": "secret-1"},
                {"exportName": "list_id", "static": "400"}
              ]
            }
            """));
        var preview = await ReadOkAsync(await api.PostJsonAsync($"{Profiles}/{json}/preview", new { order = new { orderId = 5010, firstName = "José" } }));
        var request = preview["request"]!;
        Assert.Equal("POST", request["method"]!.GetValue<string>());
        Assert.Equal("https://postingmydata.com/partials.php", request["url"]!.GetValue<string>());
        Assert.Equal("""{"first_name":"José","list_id":"400"}""", request["body"]!.GetValue<string>());
        var headers = request["headers"]!.AsArray().Select(h => (h!["key"]!.GetValue<string>(), h!["value"]!.GetValue<string>())).ToList();
        Assert.Contains(("X-Api-Key", "secret-1"), headers);
        Assert.Contains(("Content-Type", "application/json"), headers);

        var put = await CreateAsync(Profile("""
            {
              "mappings": [
                {"exportName": "first_name", "field": "firstName"},
                {"exportName": "header:httpMethod", "static": "PUT"},
                {"exportName": "header:httpMethodType", "static": "GET"}
              ]
            }
            """));
        preview = await ReadOkAsync(await api.PostJsonAsync($"{Profiles}/{put}/preview", new { order = new { orderId = 5011, firstName = "Jane" } }));
        request = preview["request"]!;
        Assert.Equal("PUT", request["method"]!.GetValue<string>());
        Assert.Equal("https://postingmydata.com/partials.php?first_name=Jane", request["url"]!.GetValue<string>());
        Assert.DoesNotContain("httpMethod", request["raw"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Preview_refuses_bad_input()
    {
        var id = await CreatePreviewProfileAsync("PV-BAD");
        var api = Api();
        var url = $"{Profiles}/{id}/preview";

        await Json.AssertProblemAsync(await api.PostJsonAsync(url, new { }), 400, "orderId");
        await Json.AssertProblemAsync(await api.PostJsonAsync(url, new { orderId = 5020, order = new { orderId = 5020 } }), 400, "orderId");
        await Json.AssertProblemAsync(await api.PostJsonAsync(url, new { order = new { orderId = 5020, emailAddress = "not-an-email" } }), 400, "order.emailAddress");
        await Json.AssertProblemAsync(await api.PostJsonAsync(url, new { order = new { firstName = "No id" } }), 400, "order.orderId");
        await Json.AssertProblemAsync(await api.PostJsonAsync(url, new { order = "5020" }), 400, "order");
        var reason = await Json.AssertProblemAsync(await api.PostJsonAsync(url, new { customerType = "sale", order = new { orderId = 5020 } }), 400, "customerType");
        Assert.Contains("'sale' is not a customer type", reason, StringComparison.Ordinal);
        await Json.AssertProblemAsync(await api.PostRawAsync(url, """{"ordreId": 5020}"""), 400, "ordreId");
        var malformed = await api.PostRawAsync(url, "{\"orderId\": ");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Equal("application/problem+json", malformed.Content.Headers.ContentType?.MediaType);
        await AssertNotFoundAsync(await api.PostJsonAsync(url, new { orderId = 987654321 }));

        // Preview never stores the inline order.
        Assert.False(await Hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId == 5020)));
    }

    [Fact]
    public async Task Preview_of_another_organizations_profile_or_order_is_404()
    {
        var mine = await CreatePreviewProfileAsync("PV-ISO");
        var ingest = await Other().PostJsonAsync("/api/v1/events", new
        {
            eventId = "pv-iso-other",
            type = "partial",
            order = new { orderId = 5030, firstName = "Other", campaignId = "PV-ISO" },
        });
        Assert.Equal(HttpStatusCode.Accepted, ingest.StatusCode);

        // The other organization cannot preview this profile...
        await AssertNotFoundAsync(await Other().PostJsonAsync($"{Profiles}/{mine}/preview", new { orderId = 5030 }));
        // ...and this organization cannot preview the other's stored order.
        await AssertNotFoundAsync(await Api().PostJsonAsync($"{Profiles}/{mine}/preview", new { orderId = 5030 }));
    }
}
