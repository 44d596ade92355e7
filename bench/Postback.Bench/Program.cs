using System.Globalization;
using Postback.Bench;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (BenchOptions.HelpRequested)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine("bench: " + e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

var ownWorkDir = options.WorkDir is null;
var workDir = options.WorkDir ?? Directory.CreateTempSubdirectory("postback-bench.").FullName;
Directory.CreateDirectory(workDir);

var results = new List<StorageResult>();
var exit = 0;
try
{
    foreach (var storage in options.Storages)
    {
        var run = new StorageRun(options, storage, Path.Combine(workDir, storage));
        try
        {
            var result = await run.RunAsync();
            results.Add(result);
            Console.WriteLine();
            Console.WriteLine(Report.Table(result, options));
        }
        catch (BenchException e)
        {
            Console.Error.WriteLine($"[bench] {storage}: FAILED: {e.Message}");
            Console.WriteLine($"== {storage}: the benchmark did not complete: {e.Message}");
            exit = 1;
        }
    }
    if (results.Count > 1)
    {
        Console.WriteLine();
        Console.WriteLine(Report.Summary(results));
    }
    if (options.ScaleOut)
    {
        try
        {
            var scale = await StorageRun.ScaleOutAsync(options, workDir);
            Console.WriteLine();
            Console.WriteLine(StorageRun.ScaleTable(scale));
        }
        catch (BenchException e)
        {
            Console.Error.WriteLine($"[bench] scale-out: FAILED: {e.Message}");
            Console.WriteLine($"== scale-out: the benchmark did not complete: {e.Message}");
            exit = 1;
        }
    }
    if (exit == 0 && options.Strict && results.Any(r => !r.AllTargetsMet))
    {
        exit = 3;
    }
}
finally
{
    if (ownWorkDir && !options.Keep)
    {
        try
        {
            Directory.Delete(workDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
    else if (ownWorkDir)
    {
        Console.Error.WriteLine($"[bench] work directory kept: {workDir}");
    }
}
return exit;
