namespace Postback.Plugins;

public static class PluginKinds
{
    public const string Konnektive = "konnektive";
    public const string CheckoutChamp = "checkoutchamp";

    public static readonly IReadOnlyList<string> All = [Konnektive, CheckoutChamp];

    public static bool IsKnown(string? kind) => kind is Konnektive or CheckoutChamp;
}
