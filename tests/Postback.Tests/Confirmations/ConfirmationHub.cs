using Microsoft.Extensions.Time.Testing;
using Postback.Testing;
using Postback.Tests.Support;

namespace Postback.Tests.Confirmations;

/// The real hub on Kestrel (a HubFactory) whose clock is a FakeTimeProvider: retry and e-mail
/// backoff are moved on by the test, never slept through. The confirmation worker and the
/// e-mail sender run; export deliveries do not. Several hubs can share one database, one after
/// the other, to show what survives a restart.
public sealed class ConfirmationHub(
    FakeTimeProvider time, string connectionString, StorageKind storage, int smtpPort, IReadOnlyDictionary<string, string?>? settings = null)
    : HubFactory(storage, connectionString, settings: HubSettings.With(
        new Dictionary<string, string?>
        {
            ["Postback:Outbound:TimeoutSeconds"] = "1",
            ["Postback:Confirmation:PollMilliseconds"] = "50",
        },
        HubSettings.Smtp(smtpPort),
        settings), time: time)
{
    public FakeTimeProvider Time { get; } = time;

    public static string SqliteConnectionString(string directory) => HubSettings.SqliteConnectionString(directory);

    public static ConfirmationHub Start(FakeTimeProvider time, string connectionString, StorageKind storage, int smtpPort, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var hub = new ConfirmationHub(time, connectionString, storage, smtpPort, settings);
        hub.StartServer();
        return hub;
    }
}
