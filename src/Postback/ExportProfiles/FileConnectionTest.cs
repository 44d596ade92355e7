namespace Postback.ExportProfiles;

public sealed record ConnectionStep(string Step, bool Ok, string Detail);

public sealed record ConnectionTestView(bool Succeeded, IReadOnlyList<ConnectionStep> Steps, string? Error);

/// A file profile's test (POST /export-profiles/{id}/test) connects to its destination, lists
/// the directory, and writes and deletes a probe file. The destinations are FileExports', which
/// implements this and registers it (AddFileExports): FileExports depends on the profiles, not
/// the other way round.
public interface IFileConnectionTest
{
    Task<ConnectionTestView> TestAsync(FileSettings settings, CancellationToken ct);
}
