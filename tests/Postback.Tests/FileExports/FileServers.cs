using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Storage;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// The file servers ./test.sh starts on 127.0.0.1 (sshd with an internal-sftp chroot user,
/// pyftpdlib FTP and FTPS) and the folder root, from the POSTBACK_TEST_* variables. Each
/// destination gets a directory of its own per test, so tests never see each other's files;
/// the tests run as root and read what arrived straight from the servers' disks.
public static class FileServers
{
    public static readonly string[] Destinations = [FileDestinations.Sftp, FileDestinations.Ftp, FileDestinations.Ftps, FileDestinations.Folder];

    public static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{name} is not set. The file export tests need real SFTP, FTP and FTPS servers: run ./test.sh, which installs and starts them on 127.0.0.1.");

    public static int Port(string destination) => int.Parse(Env(destination switch
    {
        FileDestinations.Sftp => "POSTBACK_TEST_SFTP_PORT",
        FileDestinations.Ftp => "POSTBACK_TEST_FTP_PORT",
        _ => "POSTBACK_TEST_FTPS_PORT",
    }), System.Globalization.CultureInfo.InvariantCulture);

    public static string FolderRoot => Env("POSTBACK_TEST_FOLDER_ROOT");

    /// A fresh directory on the destination: its path as the profile names it, and where it is
    /// on this machine's disk.
    public static (string Remote, string Local) NewDirectory(string destination)
    {
        var name = "t" + Guid.NewGuid().ToString("N")[..12];
        var (remote, local) = destination switch
        {
            FileDestinations.Sftp => ("/upload/" + name, Path.Combine(Env("POSTBACK_TEST_SFTP_ROOT"), "upload", name)),
            FileDestinations.Ftp => ("/" + name, Path.Combine(Env("POSTBACK_TEST_FTP_ROOT"), name)),
            FileDestinations.Ftps => ("/" + name, Path.Combine(Env("POSTBACK_TEST_FTPS_ROOT"), name)),
            _ => (Path.Combine(FolderRoot, name), Path.Combine(FolderRoot, name)),
        };
        Directory.CreateDirectory(local);
        // The chroot user of sshd is not root: it must be able to write here.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(local, (UnixFileMode)0b111_111_111);
        }
        return (remote, local);
    }

    /// The profile's "file" block for a destination; <paramref name="port"/> replaces the
    /// server's (a forwarder in front of it, or nothing listening).
    public static Dictionary<string, object?> Settings(string destination, string directory, int? port = null, string? fingerprint = null, bool useKey = false)
    {
        var file = new Dictionary<string, object?>
        {
            ["destination"] = destination,
            ["directory"] = directory,
            ["fileName"] = "{profile}_{route}_{date:yyyyMMdd}.csv",
            ["schedule"] = new { time = "00:15", timeZone = "America/New_York" },
        };
        switch (destination)
        {
            case FileDestinations.Sftp:
                file["host"] = "127.0.0.1";
                file["port"] = port ?? Port(destination);
                file["username"] = Env("POSTBACK_TEST_SFTP_USER");
                if (useKey)
                {
                    file["privateKey"] = File.ReadAllText(Env("POSTBACK_TEST_SFTP_KEY"));
                }
                else
                {
                    file["password"] = Env("POSTBACK_TEST_SFTP_PASSWORD");
                }
                file["hostKeyFingerprint"] = fingerprint ?? Env("POSTBACK_TEST_SFTP_FINGERPRINT");
                break;
            case FileDestinations.Ftp or FileDestinations.Ftps:
                file["host"] = "127.0.0.1";
                file["port"] = port ?? Port(destination);
                file["username"] = Env("POSTBACK_TEST_FTP_USER");
                file["password"] = Env("POSTBACK_TEST_FTP_PASSWORD");
                if (destination == FileDestinations.Ftps)
                {
                    file["hostKeyFingerprint"] = fingerprint ?? Env("POSTBACK_TEST_FTPS_FINGERPRINT");
                }
                break;
        }
        return file;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string[] Files(string local) =>
        Directory.GetFiles(local).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
}

/// A loopback TCP port that forwards to a real server while it is up and refuses connections
/// while it is down: a destination that is down, then comes back on the same address.
public sealed class TcpForwarder(int port, int target) : IAsyncDisposable
{
    private TcpListener? _listener;
    private CancellationTokenSource? _stop;
    private Task? _accept;

    public int Port => port;

    public void Up()
    {
        _stop = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start();
        var listener = _listener;
        var stop = _stop.Token;
        _accept = Task.Run(async () =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var client = await listener.AcceptTcpClientAsync(stop);
                    _ = Task.Run(() => PipeAsync(client, stop), stop);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }, stop);
    }

    private async Task PipeAsync(TcpClient client, CancellationToken stop)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, target, stop);
                var a = client.GetStream();
                var b = server.GetStream();
                var up = a.CopyToAsync(b, stop).ContinueWith(_ => server.Client.Shutdown(SocketShutdown.Send), TaskScheduler.Default);
                var down = b.CopyToAsync(a, stop).ContinueWith(_ => client.Client.Shutdown(SocketShutdown.Send), TaskScheduler.Default);
                await Task.WhenAll(up, down);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync();
            _listener?.Stop();
            if (_accept is not null)
            {
                await _accept;
            }
        }
    }
}

/// The real hub on Kestrel with a FakeTimeProvider; its file worker does not poll by itself:
/// the test runs a pass (FileRunWorker.PassAsync) when it has moved the clock. Folder
/// destinations may write under the test folder root.
public sealed class FileHub : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "postback-tests", "files-" + Guid.NewGuid().ToString("N"));

    public FileHub(FakeTimeProvider time, StorageKind storage = StorageKind.Sqlite, string? connectionString = null)
    {
        Time = time;
        Directory.CreateDirectory(_directory);
        _settings = new()
        {
            ["Postback:BootstrapApiKey"] = HubFactory.ApiKey,
            ["Postback:Outbound:AllowPrivateNetworks"] = "true",
            ["Postback:Storage:Provider"] = storage == StorageKind.Sqlite ? "sqlite" : "postgres",
            ["ConnectionStrings:Postback"] = connectionString ?? $"Data Source={Path.Combine(_directory, "postback.db")}",
            ["Postback:Delivery:Enabled"] = "false",
            ["Postback:FileExports:Enabled"] = "false",
            ["Postback:FileExports:FolderRoot"] = Environment.GetEnvironmentVariable("POSTBACK_TEST_FOLDER_ROOT") ?? _directory,
            ["Postback:FileExports:TimeoutSeconds"] = "10",
        };
        UseKestrel(0);
    }

    public FakeTimeProvider Time { get; }

    public static async Task<FileHub> StartAsync(FakeTimeProvider time, StorageKind storage = StorageKind.Sqlite)
    {
        var connectionString = storage == StorageKind.Postgres ? await PostgresServer.CreateDatabaseAsync("pb_files") : null;
        var hub = new FileHub(time, storage, connectionString);
        hub.StartServer();
        return hub;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Time));
    }

    public HttpClient Api()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", HubFactory.ApiKey);
        return client;
    }

    /// One pass of the file worker at the fake clock's time: schedule due days, run due runs.
    public Task<int> PassAsync() => Services.GetRequiredService<FileRunWorker>().PassAsync(CancellationToken.None);

    public async Task<T> WithDbAsync<T>(Func<PostbackDb, Task<T>> work)
    {
        await using var scope = Services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<PostbackDb>());
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
