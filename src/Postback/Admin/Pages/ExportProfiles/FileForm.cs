using System.Globalization;
using Postback.ExportProfiles;

namespace Postback.Admin.Pages.ExportProfiles;

/// The destination settings of a file profile as the admin forms post them. The password box
/// shows the mask when one is stored; posting the mask (or a blank key box) keeps the stored
/// secret, as the API does.
public sealed class FileForm
{
    public string? Destination { get; set; } = FileDestinations.Sftp;
    public string? Host { get; set; }
    public string? Port { get; set; }
    public string? Username { get; set; }
    public string? Password { get; set; }
    public string? PrivateKey { get; set; }
    public bool RemovePrivateKey { get; set; }
    public string? HostKeyFingerprint { get; set; }
    public string? Directory { get; set; }
    public string? FileName { get; set; } = FileSettings.DefaultFileName;
    public string? Time { get; set; } = FileSettings.DefaultTime;
    public string? TimeZone { get; set; } = FileSettings.DefaultTimeZone;
    public string? Delimiter { get; set; } = ",";
    public bool Header { get; set; } = true;
    public bool EmptyFile { get; set; } = true;
    public bool HasPrivateKey { get; set; }

    public static FileForm From(FileSettings s) => new()
    {
        Destination = s.Destination,
        Host = s.Host,
        Port = s.Port?.ToString(CultureInfo.InvariantCulture),
        Username = s.Username,
        Password = s.Password is null ? "" : FileSettingsView.Mask,
        HasPrivateKey = s.PrivateKey is not null,
        HostKeyFingerprint = s.HostKeyFingerprint,
        Directory = s.Directory,
        FileName = s.FileName,
        Time = s.Schedule.Time,
        TimeZone = s.Schedule.TimeZone,
        Delimiter = s.Delimiter == "\t" ? "tab" : s.Delimiter,
        Header = s.Header,
        EmptyFile = s.EmptyFile,
    };

    public FileSettingsInput ToInput(AdminPageModel page) => new(
        Destination,
        Blank(Host),
        AdminForms.ParseInt(Port, "file.port", page),
        Blank(Username),
        Password ?? "",
        RemovePrivateKey ? "" : Blank(PrivateKey),
        Blank(HostKeyFingerprint),
        Directory,
        Blank(FileName),
        new FileScheduleInput(Blank(Time), Blank(TimeZone)),
        Header,
        Delimiter == "tab" ? "\t" : Delimiter,
        EmptyFile);

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    public static readonly string[] Fields =
    [
        "file", "file.destination", "file.host", "file.port", "file.username", "file.password", "file.privateKey", "file.hostKeyFingerprint",
        "file.directory", "file.fileName", "file.schedule.time", "file.schedule.timeZone", "file.delimiter",
    ];
}
