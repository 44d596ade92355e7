namespace Postback.ExportProfiles;

public static class FileDestinations
{
    public const string Sftp = "sftp";
    public const string Ftp = "ftp";
    public const string Ftps = "ftps";
    public const string Folder = "folder";

    public static readonly IReadOnlyList<string> All = [Sftp, Ftp, Ftps, Folder];

    public static int DefaultPort(string destination) => destination == Sftp ? 22 : 21;
}

public sealed record FileSchedule(string Time, string TimeZone);

/// A file profile's destination and file format, as stored. Password and PrivateKey are
/// secrets: never shown by the API (see FileSettingsView), never logged.
public sealed record FileSettings(
    string Destination,
    string? Host,
    int? Port,
    string? Username,
    string? Password,
    string? PrivateKey,
    string? HostKeyFingerprint,
    string Directory,
    string FileName,
    FileSchedule Schedule,
    bool Header = true,
    string Delimiter = ",",
    bool EmptyFile = true)
{
    public const string DefaultFileName = "{profile}_{route}_{date:yyyyMMdd}.csv";
    public const string DefaultTime = "00:15";
    public const string DefaultTimeZone = "UTC";
}

/// The "file" block of a profile as given to the API. A password of "********" (what GET
/// shows) or null keeps the stored one, "" removes it; a privateKey of null keeps the stored
/// key, "" removes it. So a GET edited and PUT back never loses a secret.
public sealed record FileSettingsInput(
    string? Destination = null,
    string? Host = null,
    int? Port = null,
    string? Username = null,
    string? Password = null,
    string? PrivateKey = null,
    string? HostKeyFingerprint = null,
    string? Directory = null,
    string? FileName = null,
    FileScheduleInput? Schedule = null,
    bool? Header = null,
    string? Delimiter = null,
    bool? EmptyFile = null);

public sealed record FileScheduleInput(string? Time = null, string? TimeZone = null);

/// What GET shows of the file block: secrets replaced by a mask and a flag.
public sealed record FileSettingsView(
    string Destination, string? Host, int? Port, string? Username, string? Password, string? PrivateKey, bool HasPrivateKey,
    string? HostKeyFingerprint, string Directory, string FileName, FileSchedule Schedule, bool Header, string Delimiter, bool EmptyFile)
{
    public const string Mask = "********";

    public static FileSettingsView? From(FileSettings? s) => s is null ? null : new(
        s.Destination, s.Host, s.Port, s.Username, s.Password is null ? null : Mask, null, s.PrivateKey is not null,
        s.HostKeyFingerprint, s.Directory, s.FileName, s.Schedule, s.Header, s.Delimiter, s.EmptyFile);
}

public static class FileSettingsInputs
{
    /// The stored settings as input again, secrets masked (validation keeps the stored ones).
    public static FileSettingsInput? From(FileSettings? s) => s is null ? null : new(
        s.Destination, s.Host, s.Port, s.Username, s.Password is null ? null : FileSettingsView.Mask, null, s.HostKeyFingerprint,
        s.Directory, s.FileName, new FileScheduleInput(s.Schedule.Time, s.Schedule.TimeZone), s.Header, s.Delimiter, s.EmptyFile);
}
