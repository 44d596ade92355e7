using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Postback.ExportProfiles;
using Postback.Outbound;
using Postback.Infrastructure;

namespace Postback.FileExports;

/// FTP, and explicit FTPS (AUTH TLS, with PROT P data connections), in passive mode: a small
/// client of our own. .NET's FtpWebRequest (obsolete) cannot do what this needs:
/// - it checks an FTPS server's certificate only through the process-wide
///   ServicePointManager callback, so one profile's pinned certificate (hostKeyFingerprint)
///   would apply to every connection in the process;
/// - it connects to the host name itself, so the SSRF check (which resolves the name and
///   refuses private addresses) could be bypassed by a name that resolves differently the
///   second time, and it trusts the address in a PASV reply (FTP bounce);
/// - every request is a new login, and a rename that replaces a file is two of them.
/// The data connection goes to the control connection's address, whatever PASV says.
public sealed partial class FtpDestination(FileSettings settings, FileExportOptions options, bool allowPrivateNetworks) : FileDestination
{
    private Stream? _control;
    private StreamReader? _reader;
    private IPAddress? _address;
    private bool Tls => settings.Destination == FileDestinations.Ftps;
    private TimeSpan Timeout => TimeSpan.FromSeconds(options.TimeoutSeconds);

    [GeneratedRegex(@"\(\|\|\|(\d+)\|\)")]
    private static partial Regex Epsv();

    [GeneratedRegex(@"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")]
    private static partial Regex Pasv();

    public override async Task ConnectAsync(CancellationToken ct)
    {
        using var timeout = Bounded(ct);
        try
        {
            _address = await ResolveAsync(settings.Host!, allowPrivateNetworks, timeout.Token);
            var port = settings.Port ?? 21;
            var stream = await NetworkGuard.ConnectAsync(new DnsEndPoint(_address.ToString(), port), allowPrivate: true, timeout.Token);
            SetStream(stream);
            await ExpectAsync(220, timeout.Token);
            if (Tls)
            {
                await CommandAsync("AUTH TLS", 234, timeout.Token);
                SetStream(await SecureAsync(stream, timeout.Token));
            }
            var user = await CommandAsync("USER " + settings.Username, null, timeout.Token);
            if (user.Code == 331)
            {
                await CommandAsync("PASS " + (settings.Password ?? ""), 230, timeout.Token, secret: true);
            }
            else if (user.Code != 230)
            {
                throw new FileDestinationException($"the server refused the login of {settings.Username}: {user.Text}");
            }
            if (Tls)
            {
                await CommandAsync("PBSZ 0", 200, timeout.Token);
                await CommandAsync("PROT P", 200, timeout.Token);
            }
            await CommandAsync("TYPE I", 200, timeout.Token);
            await CommandAsync("CWD " + settings.Directory, 250, timeout.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new FileDestinationException($"connecting to {settings.Host}:{settings.Port ?? 21}: {Describe(e)}", e);
        }
    }

    public override async Task<IReadOnlyList<string>> ListAsync(CancellationToken ct)
    {
        using var timeout = Bounded(ct);
        var bytes = new MemoryStream();
        await TransferAsync("NLST", data => data.CopyToAsync(bytes, timeout.Token), timeout.Token);
        return Encoding.UTF8.GetString(bytes.ToArray())
            .Split(["\r\n", "\n"], StringSplitOptions.RemoveEmptyEntries)
            .Select(n => n[(n.LastIndexOf('/') + 1)..])
            .Where(n => n is not ("." or ".."))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    public override async Task UploadAsync(string fileName, Stream content, CancellationToken ct)
    {
        var part = fileName + PartSuffix;
        try
        {
            // A large file may take longer than one timeout: the transfer is bounded by the
            // caller's token (the run's lease); each command by the timeout.
            await TransferAsync("STOR " + part, data => content.CopyToAsync(data, ct), ct);
            using var timeout = Bounded(ct);
            await CommandAsync("RNFR " + part, 350, timeout.Token);
            var renamed = await CommandAsync("RNTO " + fileName, null, timeout.Token);
            if (renamed.Code != 250)
            {
                // A server whose rename will not replace a file: remove the old one, then rename.
                await CommandAsync("DELE " + fileName, null, timeout.Token);
                await CommandAsync("RNFR " + part, 350, timeout.Token);
                await CommandAsync("RNTO " + fileName, 250, timeout.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new FileDestinationException($"uploading {Join(settings.Directory, fileName)}: {Describe(e)}", e);
        }
    }

    public override async Task DeleteAsync(string fileName, CancellationToken ct)
    {
        using var timeout = Bounded(ct);
        await CommandAsync("DELE " + fileName, 250, timeout.Token);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_control is { } control)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await WriteLineAsync("QUIT", timeout.Token);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The connection is closed below either way.
            }
            await control.DisposeAsync();
            _control = null;
        }
    }

    private CancellationTokenSource Bounded(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(Timeout);
        return cts;
    }

    private void SetStream(Stream stream)
    {
        _control = stream;
        _reader = new StreamReader(stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 1024, leaveOpen: true);
    }

    private async Task<SslStream> SecureAsync(Stream stream, CancellationToken ct)
    {
        var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = settings.Host,
            RemoteCertificateValidationCallback = CheckCertificate,
        }, ct);
        return ssl;
    }

    // With a hostKeyFingerprint the certificate is pinned (its SHA-256, as SHA256:base64):
    // it must be that one, signed by anyone. Without, it must be valid for the host.
    private bool CheckCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (settings.HostKeyFingerprint is { } pinned)
        {
            return certificate is not null && CertificateFingerprint(certificate).TrimEnd('=') == pinned.TrimEnd('=');
        }
        return errors == SslPolicyErrors.None;
    }

    public static string CertificateFingerprint(X509Certificate certificate) =>
        "SHA256:" + Convert.ToBase64String(SHA256.HashData(certificate.GetRawCertData())).TrimEnd('=');

    private async Task TransferAsync(string command, Func<Stream, Task> transfer, CancellationToken ct)
    {
        var port = await PassivePortAsync(ct);
        await using var raw = await NetworkGuard.ConnectAsync(new DnsEndPoint(_address!.ToString(), port), allowPrivate: true, ct);
        var opened = await CommandAsync(command, null, ct);
        if (opened.Code is not (125 or 150))
        {
            throw new FileDestinationException($"{Verb(command)} refused: {opened.Code} {opened.Text}");
        }
        if (Tls)
        {
            await using var data = await SecureAsync(raw, ct);
            await transfer(data);
            // close_notify first: a server that reads to the end of a TLS stream needs it to know
            // the upload is complete rather than cut off.
            await data.ShutdownAsync();
            await DrainAsync(data, ct);
        }
        else
        {
            await transfer(raw);
            if (raw is NetworkStream network)
            {
                network.Socket.Shutdown(SocketShutdown.Send);
            }
            await DrainAsync(raw, ct);
        }
        await raw.DisposeAsync();
        var done = await ReadReplyAsync(ct);
        if (done.Code is not (226 or 250))
        {
            throw new FileDestinationException($"{Verb(command)} failed: {done.Code} {done.Text}");
        }
    }

    // Waits for the server to close its end before closing ours. Closing a socket with unread
    // data (the server's own close_notify) sends a reset, and a reset makes the server's
    // kernel drop what it had received but not yet read: the end of the file.
    private async Task DrainAsync(Stream data, CancellationToken ct)
    {
        using var timeout = Bounded(ct);
        var buffer = new byte[4096];
        try
        {
            while (await data.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or AuthenticationException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            // The server closed without a TLS goodbye, or never closed: its reply says whether
            // the transfer is complete.
        }
    }

    private async Task<int> PassivePortAsync(CancellationToken ct)
    {
        var epsv = await CommandAsync("EPSV", null, ct);
        if (epsv.Code == 229 && Epsv().Match(epsv.Text) is { Success: true } e)
        {
            return int.Parse(e.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        var pasv = await CommandAsync("PASV", 227, ct);
        var m = Pasv().Match(pasv.Text);
        if (!m.Success)
        {
            throw new FileDestinationException("the server's PASV reply has no address: " + pasv.Text);
        }
        // The address in the reply is ignored (see the class comment); only the port is used.
        return int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture) * 256 + int.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture);
    }

    private sealed record Reply(int Code, string Text);

    private async Task<Reply> CommandAsync(string command, int? expected, CancellationToken ct, bool secret = false)
    {
        if (command.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new FileDestinationException($"{Verb(command)}: a line break in an FTP command is not allowed");
        }
        await WriteLineAsync(command, ct);
        var reply = await ReadReplyAsync(ct);
        if (expected is { } code && reply.Code != code)
        {
            var what = secret ? Verb(command) : command;
            throw new FileDestinationException(reply.Code == 530
                ? $"the server refused the login of {settings.Username}: {reply.Code} {reply.Text}"
                : $"{what}: the server answered {reply.Code} {reply.Text}");
        }
        return reply;
    }

    private static string Verb(string command) => command.Split(' ', 2)[0];

    private async Task WriteLineAsync(string line, CancellationToken ct)
    {
        await _control!.WriteAsync(Encoding.UTF8.GetBytes(line + "\r\n"), ct);
        await _control.FlushAsync(ct);
    }

    private async Task ExpectAsync(int code, CancellationToken ct)
    {
        var reply = await ReadReplyAsync(ct);
        if (reply.Code != code)
        {
            throw new FileDestinationException($"the server answered {reply.Code} {reply.Text}");
        }
    }

    // A reply is "ddd text", or "ddd-text" lines up to a "ddd text" line (RFC 959 4.2).
    private async Task<Reply> ReadReplyAsync(CancellationToken ct)
    {
        var first = await _reader!.ReadLineAsync(ct) ?? throw new IOException("the server closed the connection");
        if (first.Length < 3 || !int.TryParse(first.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
        {
            throw new IOException("not an FTP reply: " + Clip(first));
        }
        var text = new StringBuilder(first.Length > 4 ? first[4..] : "");
        if (first.Length > 3 && first[3] == '-')
        {
            var end = first[..3] + " ";
            string? line;
            do
            {
                line = await _reader.ReadLineAsync(ct) ?? throw new IOException("the server closed the connection");
                text.Append(' ').Append(line.StartsWith(end, StringComparison.Ordinal) ? line[4..] : line.Trim());
            }
            while (!line.StartsWith(end, StringComparison.Ordinal));
        }
        return new Reply(code, Clip(text.ToString().Trim()));
    }

    private static string Clip(string s) => s.Length <= 300 ? s : s[..300];

    private static string Describe(Exception e) => e is OperationCanceledException ? "timed out" : e.Message;
}
