using System.Collections.Concurrent;
using System.Net;

namespace Postback.Admin;

/// Failed logins per client address and per operator account: after MaxFailures in Window, that address waits out the
/// window. API keys are 256-bit random; this is for the operator-chosen password.
public sealed class LoginThrottle(TimeProvider time)
{
    public const int MaxFailures = 10;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    private readonly ConcurrentDictionary<string, (int Count, DateTimeOffset Since)> _failures = new();

    public bool IsBlocked(IPAddress? address) => IsBlocked(Key(address));

    public void Failed(IPAddress? address) => Failed(Key(address));

    public void Succeeded(IPAddress? address) => Succeeded(Key(address));

    // An operator account is throttled on its own too, so guessing one account's password from
    // many addresses is as slow as from one.
    public static string AccountKey(string email) => "account:" + Team.UserAccounts.Normalize(email);

    public bool IsBlocked(string key) =>
        _failures.TryGetValue(key, out var f) && f.Count >= MaxFailures && time.GetUtcNow() - f.Since < Window;

    public void Failed(string key)
    {
        var now = time.GetUtcNow();
        _failures.AddOrUpdate(key, _ => (1, now), (_, f) => now - f.Since >= Window ? (1, now) : (f.Count + 1, f.Since));
        if (_failures.Count > 10_000)
        {
            // Forget stale entries so a scan from many addresses cannot grow this without bound.
            foreach (var (stale, f) in _failures)
            {
                if (now - f.Since >= Window)
                {
                    _failures.TryRemove(stale, out _);
                }
            }
        }
    }

    public void Succeeded(string key) => _failures.TryRemove(key, out _);

    private static string Key(IPAddress? address) => address?.ToString() ?? "unknown";
}
