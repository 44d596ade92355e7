namespace Postback.Deliveries;

/// Per-endpoint circuit, kept by each process for the receivers it sends to. After a run of
/// failures an endpoint is held back: its deliveries stay pending together instead of each
/// retrying on its own schedule, and when the hold ends one probe goes out. A success closes
/// the circuit and the backlog drains; a failure holds it back longer.
public sealed class EndpointHealth(int failureThreshold, int maxInFlightPerEndpoint)
{
    public static readonly TimeSpan MaxHold = TimeSpan.FromMinutes(5);

    private sealed class State
    {
        public int Failures;
        public int Holds;
        public DateTimeOffset? HeldUntil;
        public bool Probing;
        public int InFlight;
    }

    private readonly Dictionary<string, State> _states = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public enum Decision
    {
        Send,
        Probe,
        Wait,
    }

    /// Endpoints this process should not claim deliveries for right now.
    public IReadOnlyList<string> Blocked(DateTimeOffset now)
    {
        lock (_lock)
        {
            return _states.Where(s => s.Value.Probing || s.Value.HeldUntil > now || s.Value.InFlight >= maxInFlightPerEndpoint)
                .Select(s => s.Key).ToList();
        }
    }

    /// Whether a claimed delivery for this endpoint may go out now; a Send or Probe must be
    /// followed by <see cref="Report"/>.
    public Decision Admit(string endpoint, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (!_states.TryGetValue(endpoint, out var state))
            {
                _states[endpoint] = state = new State();
            }
            if (state.InFlight >= maxInFlightPerEndpoint || state.Probing || state.HeldUntil > now)
            {
                return Decision.Wait;
            }
            state.InFlight++;
            if (state.HeldUntil is not null)
            {
                state.Probing = true;
                return Decision.Probe;
            }
            return Decision.Send;
        }
    }

    public enum Transition
    {
        None,
        // The endpoint went on hold (a run of failures reached the threshold).
        Held,
        // A success after a hold: the endpoint is back.
        Recovered,
    }

    /// The answer to a request <see cref="Admit"/> let through. Only a failed probe makes the
    /// hold longer: requests that were already in flight when the endpoint was held come back
    /// failing too, and must not count as more evidence than the one run of failures they are.
    public Transition Report(string endpoint, Decision admitted, bool succeeded, DateTimeOffset now)
    {
        lock (_lock)
        {
            var state = _states[endpoint];
            state.InFlight--;
            if (admitted == Decision.Probe)
            {
                state.Probing = false;
            }
            if (succeeded)
            {
                var wasHeld = state.HeldUntil is not null;
                state.Failures = 0;
                state.Holds = 0;
                state.HeldUntil = null;
                state.Probing = false;
                return wasHeld ? Transition.Recovered : Transition.None;
            }
            state.Failures++;
            if (admitted == Decision.Probe || (state.HeldUntil is null && state.Failures >= failureThreshold))
            {
                // 2 s, 4 s, 8 s ... up to five minutes between probes.
                state.Holds++;
                var hold = TimeSpan.FromSeconds(Math.Min(2 * Math.Pow(2, Math.Min(state.Holds - 1, 20)), MaxHold.TotalSeconds));
                state.HeldUntil = now + hold;
                return state.Holds == 1 ? Transition.Held : Transition.None;
            }
            return Transition.None;
        }
    }

    /// Endpoints held back now (for the postback_endpoints_on_hold gauge).
    public int OnHold(DateTimeOffset now)
    {
        lock (_lock)
        {
            return _states.Values.Count(s => s.HeldUntil is not null);
        }
    }

    /// A sent request that never got an answer because the process is stopping.
    public void Abandon(string endpoint, Decision admitted)
    {
        lock (_lock)
        {
            var state = _states[endpoint];
            state.InFlight--;
            if (admitted == Decision.Probe)
            {
                state.Probing = false;
            }
        }
    }

    /// Why this endpoint's deliveries wait, in words for the admin pages; null when they do not.
    /// This process's view: on PostgreSQL each process keeps its own circuits.
    public string? HoldReason(string endpoint, DateTimeOffset now)
    {
        lock (_lock)
        {
            return _states.TryGetValue(endpoint, out var s) ? Describe(s, now) : null;
        }
    }

    /// Every endpoint held right now, with its reason.
    public IReadOnlyList<(string Endpoint, string Reason)> Held(DateTimeOffset now)
    {
        lock (_lock)
        {
            return _states.Select(s => (s.Key, Reason: Describe(s.Value, now)))
                .Where(s => s.Reason is not null).Select(s => (s.Key, s.Reason!)).OrderBy(s => s.Key, StringComparer.Ordinal).ToList();
        }
    }

    private static string? Describe(State s, DateTimeOffset now) =>
        s.HeldUntil > now ? $"receiver on hold until {s.HeldUntil.Value.UtcDateTime:HH:mm:ss} after {s.Failures} failures"
        : s.Probing ? $"receiver on hold after {s.Failures} failures: one probe is out"
        : null;

    public (int Failures, DateTimeOffset? HeldUntil) Snapshot(string endpoint)
    {
        lock (_lock)
        {
            return _states.TryGetValue(endpoint, out var s) ? (s.Failures, s.HeldUntil) : (0, null);
        }
    }
}
