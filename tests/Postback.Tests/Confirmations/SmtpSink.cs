using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using MimeKit;

namespace Postback.Tests.Confirmations;

/// One message as the SMTP server took it: the envelope, and the message parsed back.
public sealed record ReceivedEmail(string MailFrom, IReadOnlyList<string> RcptTo, MimeMessage Message)
{
    public string Subject => Message.Subject ?? "";

    public string Text => Message.TextBody ?? "";
}

/// A real SMTP server on 127.0.0.1: Python's standard-library smtpd (no SMTP server package is
/// available to restore here), started as a child process and speaking SMTP over TCP to the
/// hub's MailKit client. It prints every message it receives as a JSON line, which this class
/// reads back. The child exits when its standard input closes, so a test run that dies does not
/// leave it behind.
public sealed class SmtpSink : IAsyncDisposable
{
    private const string Script = """
        import json, os, sys, threading, time
        try:
            import asyncore, smtpd
        except ImportError as e:
            print("NO-SMTPD Python %d.%d: %s" % (sys.version_info[0], sys.version_info[1], e), flush=True)
            sys.exit(3)
        gate = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
        class Channel(smtpd.SMTPChannel):
            # A recipient whose address starts with "refused" is refused for good, with a reply
            # far longer than any column it could be stored in.
            def smtp_RCPT(self, arg):
                if arg and arg.lower().replace("to:", "", 1).strip().lstrip("<").startswith("refused"):
                    self.push("550 5.1.1 " + "no such mailbox here, " * 120 + "end")
                    return
                smtpd.SMTPChannel.smtp_RCPT(self, arg)
            # A client that says QUIT is done with its connection: tests wait for it.
            def smtp_QUIT(self, arg):
                print("QUIT", flush=True)
                smtpd.SMTPChannel.smtp_QUIT(self, arg)
        class Sink(smtpd.SMTPServer):
            channel_class = Channel
            def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
                if gate:
                    # Holding: the message is not answered until the gate file exists.
                    print("HOLD", flush=True)
                    while not os.path.exists(gate):
                        time.sleep(0.02)
                if isinstance(data, bytes):
                    data = data.decode("utf-8", "replace")
                sys.stdout.write(json.dumps({"from": mailfrom, "to": rcpttos, "data": data}) + "\n")
                sys.stdout.flush()
        server = Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
        print("PORT %d" % server.socket.getsockname()[1], flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
        asyncore.loop(timeout=0.2)
        """;

    private readonly Process _process;
    private readonly ConcurrentQueue<ReceivedEmail> _received = new();
    private readonly Task _reader;

    private SmtpSink(Process process, int port)
    {
        _process = process;
        Port = port;
        _reader = Task.Run(ReadAsync);
    }

    public int Port { get; }

    public IReadOnlyList<ReceivedEmail> Received => [.. _received];

    private int _quits;

    /// Connections the clients ended with QUIT: a sender that says it has finished its batch.
    public int Quits => Volatile.Read(ref _quits);

    /// Completes when a held message has arrived and is waiting for the gate.
    public Task HeldAsync => _held.Task;

    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// Starts the server on this port, or on a free one when port is 0.
    /// With a gate file, every message is held unanswered (the sink says so, see HeldAsync)
    /// until that file exists: an SMTP server that is slow for as long as the test wants.
    public static async Task<SmtpSink> StartAsync(int port = 0, string? holdUntilFileExists = null)
    {
        var start = new ProcessStartInfo("python3")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var arg in new[] { "-W", "ignore", "-u", "-c", Script, port.ToString(CultureInfo.InvariantCulture), holdUntilFileExists ?? "" })
        {
            start.ArgumentList.Add(arg);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (first is not null && first.StartsWith("NO-SMTPD ", StringComparison.Ordinal))
        {
            // Never a skip: the e-mail tests fail, and say why.
            throw new InvalidOperationException(
                $"the SMTP sink needs Python's smtpd and asyncore modules (standard library up to Python 3.11, removed in 3.12; Debian 12 ships 3.11): {first[9..]}");
        }
        if (first is null || !first.StartsWith("PORT ", StringComparison.Ordinal))
        {
            var error = await process.StandardError.ReadToEndAsync();
            process.Kill();
            throw new InvalidOperationException($"the SMTP sink did not start: {first} {error}");
        }
        return new SmtpSink(process, int.Parse(first[5..], CultureInfo.InvariantCulture));
    }

    /// A port nothing listens on (yet): an SMTP server that is down.
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private async Task ReadAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line == "HOLD")
            {
                _held.TrySetResult();
                continue;
            }
            if (line == "QUIT")
            {
                Interlocked.Increment(ref _quits);
                continue;
            }
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var data = root.GetProperty("data").GetString()!;
            var message = await MimeMessage.LoadAsync(new MemoryStream(Encoding.UTF8.GetBytes(data)));
            _received.Enqueue(new ReceivedEmail(
                root.GetProperty("from").GetString()!,
                root.GetProperty("to").EnumerateArray().Select(e => e.GetString()!).ToList(),
                message));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(5000))
            {
                _process.Kill();
            }
        }
        catch (InvalidOperationException)
        {
        }
        await _reader.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        _process.Dispose();
    }
}
