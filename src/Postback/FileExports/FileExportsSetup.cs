namespace Postback.FileExports;

public static class FileExportsSetup
{
    public static IServiceCollection AddFileExports(this IServiceCollection services)
    {
        services.AddSingleton<FileRunSignal>();
        // One instance, so a test can drive a pass of the same worker the host runs.
        services.AddSingleton<FileRunWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<FileRunWorker>());
        return services;
    }
}
