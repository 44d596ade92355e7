using System.Net;
using System.Text.RegularExpressions;
using Postback.Infrastructure;
using Postback.Outbound;

namespace Postback.ExportProfiles;

/// What validating a file block needs besides the block: the network policy, the folder root,
/// and the stored settings whose secrets an update may keep.
public sealed record FileValidationContext(bool AllowPrivateNetworks, string? FolderRoot, FileSettings? Existing = null);

public static partial class FileSettingsValidation
{
    public static readonly IReadOnlyList<string> Delimiters = [",", ";", "\t", "|"];

    [GeneratedRegex("^SHA256:[A-Za-z0-9+/]{43}=?$")]
    private static partial Regex Fingerprint();

    [GeneratedRegex("^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    private static partial Regex TimeOfDay();

    public static FileSettings? Validate(FileSettingsInput? input, FileValidationContext context, ValidationErrors errors)
    {
        if (input is null)
        {
            errors.Add("file", "a file profile needs its file block: destination, host, directory, schedule...");
            return null;
        }
        var before = errors.Count;
        var existing = context.Existing;
        var destination = input.Destination?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(destination) || !FileDestinations.All.Contains(destination))
        {
            errors.Add("file.destination", string.IsNullOrEmpty(destination)
                ? $"is required: one of {string.Join(", ", FileDestinations.All)}"
                : $"'{input.Destination}' is not a destination; use one of {string.Join(", ", FileDestinations.All)}");
            destination = null;
        }
        var remote = destination is not null and not FileDestinations.Folder;

        var host = Clean(input.Host);
        int? port = null;
        string? username = Clean(input.Username), password = null, privateKey = null, fingerprint = Clean(input.HostKeyFingerprint);
        if (remote)
        {
            if (host is null)
            {
                errors.Add("file.host", "is required for " + destination);
            }
            else if (CheckHost(host, context.AllowPrivateNetworks) is { } hostError)
            {
                errors.Add("file.host", hostError);
            }
            port = input.Port ?? FileDestinations.DefaultPort(destination!);
            if (port is < 1 or > 65535)
            {
                errors.Add("file.port", "must be from 1 to 65535");
            }
            if (username is null)
            {
                errors.Add("file.username", "is required for " + destination);
            }
            else if (username.Length > 200 || username.Any(char.IsControl))
            {
                errors.Add("file.username", "must be at most 200 characters, without control characters");
            }

            password = input.Password switch
            {
                null or FileSettingsView.Mask => existing?.Password,
                "" => null,
                var p => p,
            };
            if (password is { Length: > 500 } || password?.Any(c => c is '\r' or '\n' or '\0') == true)
            {
                errors.Add("file.password", "must be at most 500 characters, without line breaks");
            }
            privateKey = input.PrivateKey switch
            {
                null => existing?.PrivateKey,
                "" => null,
                var k => k.Replace("\r\n", "\n").Trim() + "\n",
            };
            if (destination == FileDestinations.Sftp)
            {
                if (input.PrivateKey is { Length: > 0 } && CheckPrivateKey(privateKey!) is { } keyError)
                {
                    errors.Add("file.privateKey", keyError);
                }
                if (password is null && privateKey is null)
                {
                    errors.Add("file.password", "SFTP needs a password or a privateKey");
                }
                if (fingerprint is null)
                {
                    errors.Add("file.hostKeyFingerprint", "is required for SFTP: the server's host key as SHA256:… (ssh-keygen -l -f key.pub); the connection is refused when it differs");
                }
            }
            else
            {
                if (input.PrivateKey is { Length: > 0 })
                {
                    errors.Add("file.privateKey", "only SFTP logs in with a private key; FTP and FTPS use a password");
                }
                privateKey = null;
                if (destination == FileDestinations.Ftp && fingerprint is not null)
                {
                    errors.Add("file.hostKeyFingerprint", "plain FTP has no key or certificate to check; use ftps, or leave it out");
                }
            }
            if (fingerprint is not null && !Fingerprint().IsMatch(fingerprint))
            {
                errors.Add("file.hostKeyFingerprint", "must be SHA256: followed by 43 base64 characters, as ssh-keygen -l prints it");
            }
        }
        else if (destination == FileDestinations.Folder)
        {
            if (host is not null || input.Port is not null || username is not null || input.Password is { Length: > 0 } and not FileSettingsView.Mask
                || input.PrivateKey is { Length: > 0 } || fingerprint is not null)
            {
                errors.Add("file.host", "a folder destination has no host, port, username, password, privateKey or hostKeyFingerprint");
            }
            host = username = fingerprint = null;
        }

        var directory = input.Directory?.Trim();
        if (string.IsNullOrEmpty(directory))
        {
            errors.Add("file.directory", "is required: the directory the files go to, which must exist");
        }
        else if (directory.Length > 500 || directory.Any(char.IsControl))
        {
            errors.Add("file.directory", "must be at most 500 characters, without control characters");
        }
        else if (destination == FileDestinations.Folder)
        {
            if (CheckFolder(directory, context.FolderRoot, out var full) is { } folderError)
            {
                errors.Add("file.directory", folderError);
            }
            else
            {
                directory = full;
            }
        }
        else if (remote && !directory.StartsWith('/'))
        {
            errors.Add("file.directory", "must be an absolute path on the server, such as /upload");
        }

        var fileName = input.FileName?.Trim() ?? FileSettings.DefaultFileName;
        if (FileNameTemplate.Check(fileName) is { } nameError)
        {
            errors.Add("file.fileName", nameError);
        }

        var time = input.Schedule?.Time?.Trim() ?? FileSettings.DefaultTime;
        if (!TimeOfDay().IsMatch(time))
        {
            errors.Add("file.schedule.time", "must be a time of day HH:mm, from 00:00 to 23:59");
        }
        var timeZone = input.Schedule?.TimeZone?.Trim() ?? FileSettings.DefaultTimeZone;
        if (FileDays.FindTimeZone(timeZone) is null)
        {
            errors.Add("file.schedule.timeZone", $"'{timeZone}' is not a time zone; use an IANA name such as America/New_York or UTC");
        }

        var delimiter = input.Delimiter ?? ",";
        if (!Delimiters.Contains(delimiter))
        {
            errors.Add("file.delimiter", "must be one of , ; | or a tab (\\t)");
        }

        if (errors.Count > before)
        {
            return null;
        }
        return new FileSettings(
            destination!, host, port, username, password, privateKey, fingerprint, directory!, fileName,
            new FileSchedule(time, timeZone), input.Header ?? true, delimiter, input.EmptyFile ?? true);
    }

    private static string? Clean(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    public static string? CheckHost(string host, bool allowPrivateNetworks)
    {
        if (host.Length > 253 || Uri.CheckHostName(host) == UriHostNameType.Unknown)
        {
            return "must be a host name or an IP address, without a scheme, port or path (such as files.example.com)";
        }
        if (!allowPrivateNetworks
            && (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
                || IPAddress.TryParse(host, out var ip) && NetworkGuard.IsPrivate(ip)))
        {
            return "points to a private or loopback address, which Postback:Outbound:AllowPrivateNetworks does not allow";
        }
        return null;
    }

    public static string? CheckPrivateKey(string key)
    {
        try
        {
            using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(key));
            using var parsed = new Renci.SshNet.PrivateKeyFile(stream);
            return null;
        }
        catch (Exception e) when (e is Renci.SshNet.Common.SshException or ArgumentException or FormatException or InvalidOperationException or NotSupportedException)
        {
            return "is not a private key Postback can read: give an unencrypted OpenSSH or PEM key (RSA, ECDSA or Ed25519), the whole file";
        }
    }

    /// The folder as a full path, refused unless it lies under the configured root and exists.
    public static string? CheckFolder(string directory, string? root, out string full)
    {
        full = directory;
        if (string.IsNullOrWhiteSpace(root))
        {
            return "folder exports are off: set Postback:FileExports:FolderRoot to the directory they may write under";
        }
        var rootFull = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory, rootFull));
        if (full != rootFull && !full.StartsWith(rootFull + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return $"must be under {rootFull} (Postback:FileExports:FolderRoot)";
        }
        if (!System.IO.Directory.Exists(full))
        {
            return $"{full} does not exist";
        }
        return null;
    }
}
