using System.Net;
using Postback.ExportProfiles;
using Postback.Outbound;
using Renci.SshNet;
using Renci.SshNet.Common;
using Postback.Infrastructure;

namespace Postback.FileExports;

/// Why an upload or a connection test did not work, in words safe to record and show (never a
/// secret).
public sealed class FileDestinationException(string message, Exception? inner = null) : Exception(message, inner);

/// Where a file profile's files go. Every destination writes a file as "name.part" and then
/// renames it to "name", replacing what was there: a reader of the directory never sees half a
/// file, and a re-run overwrites the day's file.
public abstract class FileDestination : IAsyncDisposable
{
    public const string PartSuffix = ".part";

    public static FileDestination Open(FileSettings settings, FileExportOptions options, bool allowPrivateNetworks) => settings.Destination switch
    {
        FileDestinations.Sftp => new SftpDestination(settings, options, allowPrivateNetworks),
        FileDestinations.Ftp or FileDestinations.Ftps => new FtpDestination(settings, options, allowPrivateNetworks),
        FileDestinations.Folder => new FolderDestination(settings, options),
        _ => throw new FileDestinationException($"unknown destination '{settings.Destination}'"),
    };

    public abstract Task ConnectAsync(CancellationToken ct);

    /// The names of the files in the directory.
    public abstract Task<IReadOnlyList<string>> ListAsync(CancellationToken ct);

    /// Writes name.part, then renames it to name (replacing it).
    public abstract Task UploadAsync(string fileName, Stream content, CancellationToken ct);

    public abstract Task DeleteAsync(string fileName, CancellationToken ct);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected static string Join(string directory, string fileName) => directory.TrimEnd('/') + "/" + fileName;

    /// The addresses a host may be reached at under the SSRF rules (PRODUCT.md section 6).
    public static async Task<IPAddress> ResolveAsync(string host, bool allowPrivateNetworks, CancellationToken ct)
    {
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new FileDestinationException($"{host} does not resolve: {e.Message}", e);
        }
        var allowed = allowPrivateNetworks ? addresses : addresses.Where(a => !NetworkGuard.IsPrivate(a)).ToArray();
        if (allowed.Length == 0)
        {
            throw new FileDestinationException(addresses.Length == 0
                ? $"{host} does not resolve to any address"
                : $"{host} resolves to a private or loopback address ({addresses[0]}); set Postback:Outbound:AllowPrivateNetworks to allow it");
        }
        return allowed[0];
    }
}

public sealed class FolderDestination(FileSettings settings, FileExportOptions options) : FileDestination
{
    public override Task ConnectAsync(CancellationToken ct)
    {
        // Checked again at every run: the root or the folder may have changed since the profile
        // was saved.
        if (FileSettingsValidation.CheckFolder(settings.Directory, options.FolderRoot, out _) is { } error)
        {
            throw new FileDestinationException("directory: " + error);
        }
        return Task.CompletedTask;
    }

    public override Task<IReadOnlyList<string>> ListAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<string>>(Directory.GetFiles(settings.Directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList());

    public override async Task UploadAsync(string fileName, Stream content, CancellationToken ct)
    {
        var final = Path.Combine(settings.Directory, fileName);
        var part = final + PartSuffix;
        try
        {
            await using (var file = new FileStream(part, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 1, useAsync: true))
            {
                await content.CopyToAsync(file, ct);
                await file.FlushAsync(ct);
                // On disk before the rename makes it visible under its real name.
                file.Flush(flushToDisk: true);
            }
            File.Move(part, final, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FileDestinationException($"writing {final}: {e.Message}", e);
        }
    }

    public override Task DeleteAsync(string fileName, CancellationToken ct)
    {
        File.Delete(Path.Combine(settings.Directory, fileName));
        return Task.CompletedTask;
    }
}

public sealed class SftpDestination(FileSettings settings, FileExportOptions options, bool allowPrivateNetworks) : FileDestination
{
    private SftpClient? _client;

    public override async Task ConnectAsync(CancellationToken ct)
    {
        var address = await ResolveAsync(settings.Host!, allowPrivateNetworks, ct);
        var methods = new List<AuthenticationMethod>();
        PrivateKeyFile? key = null;
        if (settings.PrivateKey is { } privateKey)
        {
            key = new PrivateKeyFile(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(privateKey)));
            methods.Add(new PrivateKeyAuthenticationMethod(settings.Username!, key));
        }
        if (settings.Password is { } password)
        {
            methods.Add(new PasswordAuthenticationMethod(settings.Username!, password));
        }
        // Connect to the address that passed the SSRF check, not to the name again.
        var info = new Renci.SshNet.ConnectionInfo(address.ToString(), settings.Port ?? 22, settings.Username!, [.. methods])
        {
            Timeout = TimeSpan.FromSeconds(options.TimeoutSeconds),
        };
        var client = new SftpClient(info) { OperationTimeout = TimeSpan.FromSeconds(options.TimeoutSeconds) };
        string? presented = null;
        client.HostKeyReceived += (_, e) =>
        {
            presented = "SHA256:" + e.FingerPrintSHA256;
            e.CanTrust = string.Equals(presented.TrimEnd('='), settings.HostKeyFingerprint?.TrimEnd('='), StringComparison.Ordinal);
        };
        _client = client;
        try
        {
            await client.ConnectAsync(ct);
        }
        catch (SshConnectionException e) when (presented is not null && presented.TrimEnd('=') != settings.HostKeyFingerprint?.TrimEnd('='))
        {
            throw new FileDestinationException(
                $"the server's host key is {presented}, not the hostKeyFingerprint {settings.HostKeyFingerprint}: connection refused", e);
        }
        catch (SshAuthenticationException e)
        {
            throw new FileDestinationException($"the server refused the login of {settings.Username}: {e.Message}", e);
        }
        catch (Exception e) when (e is SshException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new FileDestinationException($"connecting to {settings.Host}:{settings.Port}: {e.Message}", e);
        }
        if (!client.Exists(settings.Directory))
        {
            throw new FileDestinationException($"the directory {settings.Directory} does not exist on the server");
        }
    }

    private SftpClient Client => _client ?? throw new InvalidOperationException("not connected");

    public override async Task<IReadOnlyList<string>> ListAsync(CancellationToken ct)
    {
        var names = new List<string>();
        await foreach (var entry in Client.ListDirectoryAsync(settings.Directory, ct))
        {
            if (entry.IsRegularFile)
            {
                names.Add(entry.Name);
            }
        }
        return names.Order(StringComparer.Ordinal).ToList();
    }

    public override async Task UploadAsync(string fileName, Stream content, CancellationToken ct)
    {
        var final = Join(settings.Directory, fileName);
        var part = final + PartSuffix;
        try
        {
            await Client.UploadFileAsync(content, part, ct);
            try
            {
                // posix-rename@openssh.com replaces the target in one step; plain SFTP rename
                // refuses an existing target.
                Client.RenameFile(part, final, isPosix: true);
            }
            catch (Exception e) when (e is SshException or NotSupportedException)
            {
                if (Client.Exists(final))
                {
                    Client.DeleteFile(final);
                }
                Client.RenameFile(part, final);
            }
        }
        catch (Exception e) when (e is SshException or IOException)
        {
            throw new FileDestinationException($"uploading {final}: {e.Message}", e);
        }
    }

    public override Task DeleteAsync(string fileName, CancellationToken ct) => Client.DeleteFileAsync(Join(settings.Directory, fileName), ct);

    public override ValueTask DisposeAsync()
    {
        if (_client is { } client)
        {
            try
            {
                client.Disconnect();
            }
            catch (Exception e) when (e is SshException or ObjectDisposedException or System.Net.Sockets.SocketException)
            {
                // Already gone: nothing to close.
            }
            client.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
