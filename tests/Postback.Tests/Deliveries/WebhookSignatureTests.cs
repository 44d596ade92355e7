using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Outbound;

namespace Postback.Tests.Deliveries;

public sealed class WebhookSignatureTests
{
    // The example of the Standard Webhooks specification.
    private const string SpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    [Fact]
    public void Signs_the_specification_example_as_the_specification_does()
    {
        Assert.Equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            WebhookSignature.Sign(SpecSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, """{"test": 2432232314}"""));
    }

    [Fact]
    public void Adds_the_timestamp_it_signs_and_signs_an_empty_body_as_the_empty_string()
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(1614265330).AddMilliseconds(900);
        var request = new RenderedRequest("GET", "http://127.0.0.1:9/hook?a=1", [new("webhook-id", "dlv_7")], null);
        var signed = WebhookSignature.Add(request, SpecSecret, "dlv_7", at);
        Assert.Equal("1614265330", signed.Header("webhook-timestamp"));
        Assert.Equal(WebhookSignature.Sign(SpecSecret, "dlv_7", 1614265330, ""), signed.Header("webhook-signature"));
        Assert.Equal(["webhook-id", "webhook-timestamp", "webhook-signature"], signed.Headers.Select(h => h.Key));
    }

    [Theory]
    [InlineData(SpecSecret, null)]
    [InlineData("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_")]
    [InlineData("whsec_%%%", "base64")]
    [InlineData("whsec_c2hvcnQ=", "24 to 64")]
    public void Checks_the_secret(string secret, string? error)
    {
        var given = WebhookSignature.Check(secret);
        if (error is null)
        {
            Assert.Null(given);
        }
        else
        {
            Assert.Contains(error, given);
        }
        Assert.Null(WebhookSignature.Check(WebhookSignature.Generate()));
    }
}
