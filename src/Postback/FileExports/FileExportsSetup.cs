using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;

namespace Postback.FileExports;

public static class FileExportsSetup
{
    public static IServiceCollection AddFileExports(this IServiceCollection services)
    {
        services.AddSingleton<FileRunSignal>();
        // One instance, so a test can drive a pass of the same worker the host runs.
        services.AddSingleton<FileRunWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<FileRunWorker>());
        services.AddSingleton<IFileConnectionTest, FileConnectionTest>();
        return services;
    }

    private sealed class FileConnectionTest(IOptions<PostbackOptions> options, TimeProvider time) : IFileConnectionTest
    {
        public Task<ConnectionTestView> TestAsync(FileSettings settings, CancellationToken ct) =>
            FileRunsApi.TestConnectionAsync(settings, options.Value, time, ct);
    }
}
