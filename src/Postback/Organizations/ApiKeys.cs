using System.Security.Cryptography;
using System.Text;

namespace Postback.Organizations;

public static class ApiKeys
{
    public const string Prefix = "pb_";

    public static string Generate() =>
        Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Hash(string key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    // Enough to tell keys apart, never enough to matter: at most a quarter of the key.
    public static string DisplayPrefix(string key) => key[..Math.Min(8, key.Length / 4)];
}
