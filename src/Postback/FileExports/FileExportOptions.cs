using Postback.Infrastructure;

namespace Postback.FileExports;

/// "Postback:FileExports" (docs/file-exports.md).
public sealed class FileExportOptions : ISettings
{
    // Off only for a process that should take API traffic but never upload.
    public bool Enabled { get; set; } = true;
    // Folder destinations must lie under this directory; unset, folder exports are refused.
    public string? FolderRoot { get; set; }
    // A claimed run is this process's until then, and renewed while it uploads; a crashed
    // process's run is taken over after it.
    public int LeaseSeconds { get; set; } = 120;
    // How often an idle worker looks for due runs (and for days whose run is now due).
    public int PollSeconds { get; set; } = 15;
    // The first retry of a failed upload; each later one doubles, up to the profile's cap.
    public double FirstRetrySeconds { get; set; } = 30;
    // Connect, read and write timeout of one step of an upload.
    public int TimeoutSeconds { get; set; } = 60;
    // Each run keeps its uploaded file for download this many days.
    public int KeepFilesDays { get; set; } = 30;
    // Throttle of one upload, bytes per second (0 = none): keeps a large export from filling a
    // small uplink.
    public int MaxBytesPerSecond { get; set; }

    public void Check(SettingChecks check)
    {
        check.Range(nameof(LeaseSeconds), LeaseSeconds, 1, 86_400);
        check.Range(nameof(PollSeconds), PollSeconds, 1, 86_400);
        check.Range(nameof(FirstRetrySeconds), FirstRetrySeconds, 0.001, 86_400);
        check.Range(nameof(TimeoutSeconds), TimeoutSeconds, 1, 3_600);
        check.Range(nameof(KeepFilesDays), KeepFilesDays, 0, 36_500);
        check.Range(nameof(MaxBytesPerSecond), MaxBytesPerSecond, 0, int.MaxValue);
    }
}
