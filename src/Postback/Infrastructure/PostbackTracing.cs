using System.Diagnostics;
using System.Globalization;

namespace Postback.Infrastructure;

/// The hub's spans. One trace runs from an event's ingest (an API call or an inbound CRM
/// postback) to every delivery attempt it caused: ingest stores its span's W3C trace context on
/// each delivery it schedules (Delivery.TraceParent), and each attempt, in whatever process and
/// however much later, starts its span as a child of it. Attributes carry ids and outcomes
/// only: never a URL, a header, a body, a secret or a customer's data.
public static class PostbackTracing
{
    public const string SourceName = "Postback";

    private static readonly ActivitySource Source = new(SourceName);

    /// The current span's trace context to store with work it schedules (null when nothing is
    /// being recorded, which is the case unless tracing is on).
    public static string? CurrentContext() => Activity.Current is { Recorded: true } a ? a.Id : null;

    public static Activity? StartIngest(string source, int events)
    {
        var activity = Source.StartActivity("postback.ingest", ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("postback.source", source);
            activity.SetTag("postback.events", events);
        }
        return activity;
    }

    public static Activity? StartDeliveryAttempt(long deliveryId, long profileId, int attempt, string? parentContext)
    {
        if (!Source.HasListeners())
        {
            return null;
        }
        ActivityContext.TryParse(parentContext, null, isRemote: true, out var parent);
        // Started on the worker's own loop: the claim's ambient span (none) must not be the parent.
        var previous = Activity.Current;
        Activity.Current = null;
        var activity = Source.StartActivity("postback.delivery.attempt", ActivityKind.Internal, parent);
        if (activity is null)
        {
            Activity.Current = previous;
            return null;
        }
        if (activity.IsAllDataRequested)
        {
            activity.SetTag("postback.delivery.id", deliveryId.ToString(CultureInfo.InvariantCulture));
            activity.SetTag("postback.profile.id", profileId.ToString(CultureInfo.InvariantCulture));
            activity.SetTag("postback.delivery.attempt", attempt);
        }
        return activity;
    }

    public static void Finish(Activity? activity, string outcome, int? statusCode)
    {
        if (activity is null)
        {
            return;
        }
        activity.SetTag("postback.outcome", outcome);
        if (statusCode is { } code)
        {
            activity.SetTag("http.response.status_code", code);
        }
        if (outcome is not ("succeeded" or "confirmed"))
        {
            activity.SetStatus(ActivityStatusCode.Error);
        }
    }

    public static Activity? StartConfirmation(long confirmationId, int attempt)
    {
        if (!Source.HasListeners())
        {
            return null;
        }
        var activity = Source.StartActivity("postback.confirmation", ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("postback.confirmation.id", confirmationId.ToString(CultureInfo.InvariantCulture));
            activity.SetTag("postback.confirmation.attempt", attempt);
        }
        return activity;
    }
}
