using System.Collections.Concurrent;
using System.Net;

namespace Postback.Admin;

/// Failed logins per client address: after MaxFailures in Window, that address waits out the
/// window. API keys are 256-bit random; this is for the operator-chosen password.
public sealed class LoginThrottle(TimeProvider time)
{
    public const int MaxFailures = 10;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    private readonly ConcurrentDictionary<string, (int Count, DateTimeOffset Since)> _failures = new();

    public bool IsBlocked(IPAddress? address) =>
        _failures.TryGetValue(Key(address), out var f) && f.Count >= MaxFailures && time.GetUtcNow() - f.Since < Window;

    public void Failed(IPAddress? address)
    {
        var now = time.GetUtcNow();
        _failures.AddOrUpdate(Key(address), _ => (1, now), (_, f) => now - f.Since >= Window ? (1, now) : (f.Count + 1, f.Since));
        if (_failures.Count > 10_000)
        {
            // Forget stale entries so a scan from many addresses cannot grow this without bound.
            foreach (var (key, f) in _failures)
            {
                if (now - f.Since >= Window)
                {
                    _failures.TryRemove(key, out _);
                }
            }
        }
    }

    public void Succeeded(IPAddress? address) => _failures.TryRemove(Key(address), out _);

    private static string Key(IPAddress? address) => address?.ToString() ?? "unknown";
}
