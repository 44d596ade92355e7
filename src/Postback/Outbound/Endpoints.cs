namespace Postback.Outbound;

public static class Endpoints
{
    /// The receiver a URL points at: scheme, host and port. Health is kept per endpoint, so one
    /// dead call center does not hold back another on a different host.
    public static string Of(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri)
            ? $"{uri.Scheme}://{uri.IdnHost}:{uri.Port}".ToLowerInvariant()
            : url;
}
