namespace Postback.Outbound;

/// A request exactly as it goes on the wire: what a profile renders for one order, or a
/// confirmation's POST.
public sealed record RenderedRequest(
    string Method,
    string Url,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    string? Body)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;
}
