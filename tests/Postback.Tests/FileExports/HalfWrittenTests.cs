using System.Text.Json;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Infrastructure;

namespace Postback.Tests.FileExports;

/// A reader of the destination's directory never sees half a file: while a large upload is
/// under way (held mid-file by the test) the directory holds only name.part, and the day's
/// previous file, whole; then the rename puts the new file in place at once.
public sealed class HalfWrittenTests
{
    public static TheoryData<string> Destinations => new(FileServers.Destinations);

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task A_file_never_appears_half_written(string destination)
    {
        var (remote, local) = FileServers.NewDirectory(destination);
        var settings = JsonSerializer.Deserialize<FileSettings>(JsonSerializer.Serialize(FileServers.Settings(destination, remote)), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        var options = new FileExportOptions { FolderRoot = FileServers.FolderRoot, TimeoutSeconds = 30 };
        const string name = "big.csv";
        var previous = new string('p', 1000) + "\r\n";
        File.WriteAllText(Path.Combine(local, name), previous);

        var content = new byte[8 * 1024 * 1024];
        new Random(7).NextBytes(content);
        var gated = new GatedStream(content, releaseAfter: 1024 * 1024);

        await using var uploader = FileDestination.Open(settings, options, allowPrivateNetworks: true);
        await uploader.ConnectAsync(CancellationToken.None);
        var upload = uploader.UploadAsync(name, gated, CancellationToken.None);

        // Held after the first megabyte: the server has part of the file, under .part only.
        await gated.Held.WaitAsync(TimeSpan.FromSeconds(60));
        await Support.DeliveryScenario.WaitUntilAsync(
            () => File.Exists(Path.Combine(local, name + ".part")) && new FileInfo(Path.Combine(local, name + ".part")).Length > 0,
            TimeSpan.FromSeconds(30), () => $"the upload should have begun writing {name}.part; the directory holds {string.Join(", ", FileServers.Files(local))}");
        Assert.Equal([name, name + ".part"], FileServers.Files(local));
        Assert.True(new FileInfo(Path.Combine(local, name + ".part")).Length < content.Length);
        Assert.Equal(previous, File.ReadAllText(Path.Combine(local, name)));

        gated.Release();
        await upload;
        Assert.Equal([name], FileServers.Files(local));
        Assert.Equal(content, File.ReadAllBytes(Path.Combine(local, name)));
    }

    /// Gives its bytes until releaseAfter, then waits for the test's Release.
    private sealed class GatedStream(byte[] data, int releaseAfter) : Stream
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly SemaphoreSlim _held = new(0, 1);
        private int _position;

        public SemaphoreSlim Held => _held;

        public void Release() => _release.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (_position >= releaseAfter && !_release.Task.IsCompleted)
            {
                if (_held.CurrentCount == 0)
                {
                    _held.Release();
                }
                await _release.Task.WaitAsync(ct);
            }
            var limit = _position < releaseAfter ? releaseAfter : data.Length;
            var n = Math.Min(buffer.Length, limit - _position);
            data.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
