using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Catalog;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Admin.Pages.ExportProfiles;

/// One profile's configuration page: General Settings, Field Mappings, Profile Routing,
/// Konnektive import, preview and test-send (seeds 001 and 003). Every change goes through
/// ExportProfileOperations, so it is validated exactly as the API validates it.
public sealed partial class EditModel(
    PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options, OutboundSender sender, Postback.FileExports.FileRunSignal fileSignal,
    Postback.FileExports.IFileRunLeaseStore fileRuns) : AdminPageModel
{
    public ExportProfile Profile { get; private set; } = null!;
    public IReadOnlyList<Campaign> Campaigns { get; private set; } = [];

    // General Settings
    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? PostbackUrl { get; set; }
    [BindProperty] public string? ExportDelayMinutes { get; set; }
    [BindProperty] public bool Enabled { get; set; }
    [BindProperty] public string? RetryCapMinutes { get; set; }
    [BindProperty] public string? GiveUpAfterHours { get; set; }
    [BindProperty] public string? SigningSecret { get; set; }
    [BindProperty] public string? Ordering { get; set; }
    [BindProperty] public bool Coalesce { get; set; }
    // One capture a line: "erpOrderNumber = /data/erpId".
    [BindProperty] public string? Captures { get; set; }

    // New field mapping
    [BindProperty] public string? NewExportName { get; set; }
    [BindProperty] public string? NewField { get; set; }
    [BindProperty] public string? NewCustomField { get; set; }
    [BindProperty] public string? NewStatic { get; set; }

    // A mapping edited in place (?editMapping=n shows its row as a form).
    [BindProperty(SupportsGet = true)] public int? EditMapping { get; set; }
    [BindProperty] public string? EditExportName { get; set; }
    [BindProperty] public string? EditField { get; set; }
    [BindProperty] public string? EditCustomField { get; set; }
    [BindProperty] public string? EditStatic { get; set; }

    /// Merge tags that are probably typos (MergeTagWarnings).
    public IReadOnlyList<string> MappingWarnings { get; private set; } = [];

    /// The section whose form failed: a banner at the top names it, and the page opens and
    /// scrolls to it (admin.js).
    public string? FailedSection { get; private set; }

    public static string SectionTitle(string section) => section switch
    {
        "general" => "General Settings",
        "destination" => "File destination",
        "mappings" => "Field Mappings",
        "routing" => "Profile Routing",
        _ => section,
    };

    // New route
    [BindProperty] public string? RouteName { get; set; }
    [BindProperty] public List<string> RouteCustomerTypes { get; set; } = [];
    [BindProperty] public List<string> RouteCampaignIds { get; set; } = [];
    [BindProperty] public List<string> RouteProductIds { get; set; } = [];

    [BindProperty] public string? KonnektiveJson { get; set; }

    // File profiles: destination settings, the CSV of a day, the runs.
    [BindProperty] public FileForm FileSettingsForm { get; set; } = new();
    [BindProperty(SupportsGet = true)] public string? RunDate { get; set; }
    public bool IsFile => Profile.Type == ExportTypes.File && Profile.File is not null;
    public List<(string Route, string FileName, string Csv)> CsvPreviews { get; } = [];
    public string? CsvPreviewDay { get; private set; }
    public IReadOnlyList<Postback.FileExports.FileRunView> Runs { get; private set; } = [];
    public Postback.FileExports.ConnectionTestView? ConnectionTest { get; private set; }

    // Preview and test-send: a stored order by id, or the sample order when blank.
    [BindProperty(SupportsGet = true)] public string? OrderId { get; set; }
    [BindProperty(SupportsGet = true)] public string? CustomerType { get; set; }

    public RenderOutcome? Preview { get; private set; }
    public bool PreviewUsesSample { get; private set; }
    public OutboundResult? TestResult { get; private set; }
    public RenderedRequest? TestRequest { get; private set; }

    public async Task<IActionResult> OnGetAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        if (EditMapping is { } edit && edit >= 0 && edit < Profile.Mappings.Count)
        {
            var m = Profile.Mappings[edit];
            var inCatalog = m.Field is not null && FieldGroups.Any(g => g.Fields.Any(f => f.Name == m.Field));
            (EditExportName, EditField, EditCustomField, EditStatic) = (m.ExportName, inCatalog ? m.Field : null, inCatalog ? null : m.Field, m.Static);
        }
        else
        {
            EditMapping = null;
        }
        await RenderPreviewAsync(ct);
        return await FullPageAsync(ct);
    }

    /// The preview alone, for the page's live preview (admin.js fetches it as the inputs change).
    public async Task<IActionResult> OnGetPreviewAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        await RenderPreviewAsync(ct);
        return Partial("_Preview", this);
    }

    public async Task<IActionResult> OnPostGeneralAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        var delay = AdminForms.ParseInt(ExportDelayMinutes, "exportDelayMinutes", this);
        var cap = AdminForms.ParseInt(RetryCapMinutes, "retryCapMinutes", this);
        var giveUp = AdminForms.ParseInt(GiveUpAfterHours, "giveUpAfterHours", this);
        var captures = ParseCaptures(Captures);
        if (HasErrors)
        {
            return await RedisplayAsync(ct);
        }
        var input = ExportProfileOperations.ToInput(Profile) with
        {
            Name = Name, PostbackUrl = PostbackUrl, ExportDelayMinutes = delay ?? 0, Enabled = Enabled,
            RetryCapMinutes = cap, GiveUpAfterHours = giveUp, SigningSecret = SigningSecret,
            Ordering = Ordering, Coalesce = Coalesce, Captures = captures,
        };
        // A capture's errors are shown under the captures box, each with the line it is about.
        return await SaveAsync(input, "Saved the general settings.", "general", (path, reason) =>
            path.StartsWith("captures[", StringComparison.Ordinal) ? ("captures", $"capture {CaptureNumber(path)}: {reason}") : (path, reason), ct);

        static string CaptureNumber(string path) =>
            int.TryParse(path.AsSpan(9, path.IndexOf(']') - 9), out var i) ? (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) : path;
    }

    public async Task<IActionResult> OnPostAddMappingAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        var mapping = FormMapping(NewExportName, NewField, NewCustomField, NewStatic);
        var index = Profile.Mappings.Count;
        var input = ExportProfileOperations.ToInput(Profile) with { Mappings = [.. Profile.Mappings, mapping] };
        return await SaveAsync(input, $"Added the field mapping {mapping.ExportName.Trim()}.", "mappings", (path, reason) =>
            (path.StartsWith($"mappings[{index}]", StringComparison.Ordinal) ? "new" + path[$"mappings[{index}]".Length..] : path, reason), ct);
    }

    public async Task<IActionResult> OnPostUpdateMappingAsync(long id, int index, string? name, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        if (!MappingIs(index, name))
        {
            return Changed("mappings");
        }
        var mapping = FormMapping(EditExportName, EditField, EditCustomField, EditStatic);
        var mappings = Profile.Mappings.ToList();
        mappings[index] = mapping;
        var input = ExportProfileOperations.ToInput(Profile) with { Mappings = mappings };
        EditMapping = index;
        return await SaveAsync(input, $"Saved the field mapping {mapping.ExportName.Trim()}.", "mappings", (path, reason) =>
            (path.StartsWith($"mappings[{index}]", StringComparison.Ordinal) ? "edit" + path[$"mappings[{index}]".Length..] : path, reason), ct);
    }

    public async Task<IActionResult> OnPostMoveMappingAsync(long id, int index, int by, string? name, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        var mappings = Profile.Mappings.ToList();
        var target = index + by;
        if (!MappingIs(index, name) || target < 0 || target >= mappings.Count)
        {
            return Changed("mappings");
        }
        (mappings[index], mappings[target]) = (mappings[target], mappings[index]);
        var input = ExportProfileOperations.ToInput(Profile) with { Mappings = mappings };
        return await SaveAsync(input, $"Moved the field mapping {mappings[target].ExportName}.", "mappings", null, ct);
    }

    public async Task<IActionResult> OnPostDeleteMappingAsync(long id, int index, string? name, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        if (!MappingIs(index, name))
        {
            return Changed("mappings");
        }
        var mappings = Profile.Mappings.ToList();
        var removed = mappings[index];
        mappings.RemoveAt(index);
        var input = ExportProfileOperations.ToInput(Profile) with { Mappings = mappings };
        return await SaveAsync(input, $"Deleted the field mapping {removed.ExportName}.", "mappings", null, ct);
    }

    public async Task<IActionResult> OnPostAddRouteAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        var route = new ExportRoute(RouteCustomerTypes, RouteCampaignIds, RouteProductIds, string.IsNullOrWhiteSpace(RouteName) ? null : RouteName.Trim());
        var index = Profile.Routes.Count;
        var input = ExportProfileOperations.ToInput(Profile) with { Routes = [.. Profile.Routes, route] };
        return await SaveAsync(input, "Added the route.", "routing", (path, reason) =>
            (path.StartsWith($"routes[{index}]", StringComparison.Ordinal) ? "route" + RouteIndex().Replace(path[$"routes[{index}]".Length..], "") : path, reason), ct);
    }

    public async Task<IActionResult> OnPostDeleteRouteAsync(long id, int index, string? route, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        if (index < 0 || index >= Profile.Routes.Count || AdminForms.Describe(Profile.Routes[index]) != route)
        {
            return Changed("routing");
        }
        var routes = Profile.Routes.ToList();
        routes.RemoveAt(index);
        var input = ExportProfileOperations.ToInput(Profile) with { Routes = routes };
        return await SaveAsync(input, "Deleted the route.", "routing", null, ct);
    }

    public async Task<IActionResult> OnPostImportAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        JsonElement json;
        try
        {
            using var document = JsonDocument.Parse(KonnektiveJson ?? "");
            json = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            AddError("import", $"is not JSON: {e.Message}");
            return await RedisplayAsync(ct);
        }
        var (mappings, errors) = KonnektiveMapping.Import(json);
        if (errors.Any)
        {
            foreach (var (field, reasons) in errors.ToDictionary())
            {
                foreach (var reason in reasons)
                {
                    AddError("import", field.Length == 0 ? reason : $"{field}: {reason}");
                }
            }
            return await RedisplayAsync(ct);
        }
        var input = ExportProfileOperations.ToInput(Profile) with { Mappings = mappings };
        // Errors name the Konnektive key the operator pasted, as the API's import does.
        return await SaveAsync(input, $"Imported {mappings.Count} field mappings; they replace the previous ones.", "mappings", (path, reason) =>
            MappingIndex().Match(path) is { Success: true } m
                ? ("import", $"{mappings[int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)].ExportName}: {reason}")
                : (path, reason), ct);
    }

    public async Task<IActionResult> OnPostTestAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        var outcome = await RenderPreviewAsync(ct);
        if (outcome?.Request is { } rendered)
        {
            var request = ExportProfileOperations.ForTestSend(rendered, Profile, time.GetUtcNow());
            TestRequest = request;
            TestResult = await sender.SendAsync(request, ct);
        }
        return await FullPageAsync(ct);
    }

    public async Task<IActionResult> OnPostFileSettingsAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        var file = FileSettingsForm.ToInput(this);
        FillGeneral(keepFileForm: true);
        if (HasErrors)
        {
            return await RedisplayAsync(ct);
        }
        var input = ExportProfileOperations.ToInput(Profile) with { File = file };
        return await SaveAsync(input, "Saved the destination settings.", "destination", null, ct);
    }

    public async Task<IActionResult> OnPostTestConnectionAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        if (Profile.File is { } file)
        {
            ConnectionTest = await Postback.FileExports.FileRunsApi.TestConnectionAsync(file, options.Value, time, ct);
        }
        return await RedisplayAsync(ct);
    }

    public async Task<IActionResult> OnPostRunNowAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        FillGeneral();
        if (!IsFile)
        {
            return Changed("runs");
        }
        var now = time.GetUtcNow();
        var (day, _, errors) = Postback.FileExports.FileRunsApi.CheckDay(Profile, RunDate, null, now, requireDue: true);
        if (errors is not null)
        {
            AddErrors(errors, f => "run." + f);
            return await RedisplayAsync(ct);
        }
        var runs = await fileRuns.RequestAsync(Profile, day, null, now, ct);
        fileSignal.Notify();
        Flash($"Running {Postback.FileExports.FileDays.Format(day)} now: {runs.Count} file(s). The list below shows when they are uploaded.");
        return Redirect($"/admin/export-profiles/{Profile.Id}#runs");
    }

    public async Task<IActionResult> OnGetDownloadAsync(long id, long runId, CancellationToken ct)
    {
        var run = await db.FileRuns.AsNoTracking()
            .Where(r => r.OrganizationId == OrganizationId && r.ProfileId == id && r.Id == runId)
            .Select(r => new { r.FileName, r.Content }).FirstOrDefaultAsync(ct);
        return run?.Content is null
            ? NotFoundPage($"Run {runId} has no file to download.")
            : File(run.Content, "text/csv; charset=utf-8", run.FileName);
    }

    public async Task<IActionResult> OnPostDeleteAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no export profile {id}.");
        }
        await ExportProfileOperations.DeleteAsync(Profile, db, time.GetUtcNow(), ct);
        Flash($"Deleted the export profile {Profile.Name}; its pending deliveries are cancelled.");
        return Redirect("/admin/export-profiles");
    }

    // A mapping from the form's inputs: a field typed by name wins over the picker; no field
    // makes it a static value.
    private static ExportMapping FormMapping(string? exportName, string? pickedField, string? typedField, string? staticValue)
    {
        var field = string.IsNullOrWhiteSpace(typedField) ? pickedField : typedField;
        return string.IsNullOrWhiteSpace(field)
            ? new ExportMapping(exportName ?? "", null, staticValue ?? "")
            : new ExportMapping(exportName ?? "", field.Trim(), string.IsNullOrEmpty(staticValue) ? null : staticValue);
    }

    // Row buttons name the row they were drawn for, so a list another operator changed in the
    // meantime is never edited at the wrong position.
    private bool MappingIs(int index, string? name) =>
        index >= 0 && index < Profile.Mappings.Count && Profile.Mappings[index].ExportName == name;

    private IActionResult Changed(string section)
    {
        Flash("The profile changed since this page was loaded; nothing was changed. Check the list and try again.");
        return Redirect($"/admin/export-profiles/{Profile.Id}#{section}");
    }

    /// Saves, or shows the errors, each placed (field, reason) where `place` says: next to the
    /// form input that caused it rather than under the API's path.
    private async Task<IActionResult> SaveAsync(
        ExportProfileInput input, string done, string section, Func<string, string, (string Field, string Reason)>? place, CancellationToken ct)
    {
        var errors = await ExportProfileOperations.ReplaceAsync(Profile, input, db, time.GetUtcNow(), options.Value, ct);
        if (!errors.Any)
        {
            Flash(done);
            return Redirect($"/admin/export-profiles/{Profile.Id}#{section}");
        }
        foreach (var (path, reasons) in errors.ToDictionary())
        {
            foreach (var reason in reasons)
            {
                var (field, text) = place?.Invoke(path, reason) ?? (path, reason);
                AddError(field, text);
            }
        }
        FailedSection = section;
        // The tracked entity was left as it was; reload it anyway so the page shows what is stored.
        return await RedisplayAsync(ct);
    }

    private async Task<IActionResult> RedisplayAsync(CancellationToken ct)
    {
        await db.Entry(Profile).ReloadAsync(ct);
        await RenderPreviewAsync(ct);
        return await FullPageAsync(ct);
    }

    // The whole page, with its merge-tag warnings: they read the organization's recent orders,
    // so they are worked out only when the page is shown, not for the live preview or a form
    // that redirects.
    private async Task<IActionResult> FullPageAsync(CancellationToken ct)
    {
        MappingWarnings = MergeTagWarnings.For(Profile.Mappings, await MergeTagWarnings.KnownExtraFieldsAsync(db, OrganizationId, ct));
        return Page();
    }

    private async Task<bool> LoadAsync(long id, CancellationToken ct)
    {
        var profile = await ExportProfileOperations.FindAsync(db, OrganizationId, id, ct);
        if (profile is null)
        {
            return false;
        }
        Profile = profile;
        if (IsFile)
        {
            var profileId = profile.Id;
            Runs = await db.FileRuns.AsNoTracking().Where(r => r.OrganizationId == OrganizationId && r.ProfileId == profileId)
                .OrderByDescending(r => r.Id).Take(50)
                .Select(r => new Postback.FileExports.FileRunView(r.Id, r.ProfileId, r.RouteName, r.Day, r.Status, r.Trigger, r.Round, r.Attempts,
                    r.Rows, r.Bytes, r.FileName, r.Content != null, r.LastError, r.DueAt, r.LastAttemptAt, r.CreatedAt, r.UpdatedAt, r.CompletedAt))
                .ToListAsync(ct);
        }
        Campaigns = await db.Campaigns.AsNoTracking().Include(c => c.Products)
            .Where(c => c.OrganizationId == OrganizationId).OrderBy(c => c.CampaignId).ToListAsync(ct);
        return true;
    }

    private void FillGeneral(bool keepFileForm = false)
    {
        if (!keepFileForm && Profile.File is { } file)
        {
            FileSettingsForm = FileForm.From(file);
        }
        Name = Profile.Name;
        PostbackUrl = Profile.PostbackUrl;
        ExportDelayMinutes = Profile.ExportDelayMinutes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Enabled = Profile.Enabled;
        RetryCapMinutes = Profile.RetryCapMinutes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        GiveUpAfterHours = Profile.GiveUpAfterHours?.ToString(System.Globalization.CultureInfo.InvariantCulture);
        SigningSecret = Profile.SigningSecret;
        Ordering = Profile.Ordering;
        Coalesce = Profile.Coalesce;
        Captures = string.Join("\n", Profile.Captures.Select(c => $"{c.Field} = {c.From}"));
    }

    public const string CapturesHelp = "one a line: field = /json/pointer, e.g. erpOrderNumber = /data/erpId";

    private List<ProfileCapture> ParseCaptures(string? text)
    {
        var captures = new List<ProfileCapture>();
        var lines = (text ?? "").Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        for (var i = 0; i < lines.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
            {
                continue;
            }
            var equals = lines[i].IndexOf('=');
            if (equals < 0)
            {
                AddError("captures", $"line {i + 1}: {CapturesHelp}");
                continue;
            }
            captures.Add(new ProfileCapture(lines[i][..equals].Trim(), lines[i][(equals + 1)..].Trim()));
        }
        return captures;
    }

    private async Task<RenderOutcome?> RenderPreviewAsync(CancellationToken ct)
    {
        if (IsFile)
        {
            var (day, _, dayErrors) = Postback.FileExports.FileRunsApi.CheckDay(Profile, string.IsNullOrWhiteSpace(RunDate) ? null : RunDate, null, time.GetUtcNow(), requireDue: false);
            if (dayErrors is null)
            {
                CsvPreviewDay = Postback.FileExports.FileDays.Format(day);
                CsvPreviews.Clear();
                for (var i = 0; i < Profile.Routes.Count; i++)
                {
                    var route = Profile.Routes[i].NameAt(i);
                    var csv = Postback.FileExports.CsvFile.Utf8.GetString(await Postback.FileExports.FileRunsApi.RenderDayAsync(db, Profile, day, i, ct));
                    CsvPreviews.Add((route, Postback.FileExports.FileNameTemplate.Render(Profile.File!.FileName, Profile.Name, route, day), csv));
                }
            }
        }
        var orderId = AdminForms.ParseLong(OrderId, "preview.orderId", this);
        if (Error("preview.orderId") is not null)
        {
            return null;
        }
        PreviewUsesSample = orderId is null;
        var input = new RenderInput(orderId, orderId is null ? SampleOrder.For(Profile) : null, string.IsNullOrWhiteSpace(CustomerType) ? null : CustomerType);
        Preview = await ExportProfileOperations.RenderAsync(Profile.Id, input, OrganizationId, db, ct);
        if (Preview.NotFound is { } missing)
        {
            AddError("preview.orderId", missing);
        }
        else if (Preview.Errors is { } errors)
        {
            AddErrors(errors, path => "preview." + path);
        }
        return Preview;
    }

    public static IReadOnlyList<(string Group, IReadOnlyList<(string Name, string Meaning)> Fields)> FieldGroups { get; } = BuildFieldGroups();

    private static List<(string, IReadOnlyList<(string, string)>)> BuildFieldGroups()
    {
        var groups = Fields.FieldCatalog.OrderFields.Concat(Fields.FieldCatalog.DerivedFields)
            .GroupBy(f => f.Group)
            .Select(g => (g.Key, (IReadOnlyList<(string, string)>)g.Select(f => (f.Name, f.Meaning)).ToList()))
            .ToList();
        var lines = new List<(string, string)>();
        for (var n = 1; n <= 3; n++)
        {
            lines.AddRange(Fields.FieldCatalog.ProductLineFields.Select(p => ($"product{n}_{p.Suffix}", p.Meaning.Replace("line N", $"line {n}", StringComparison.Ordinal))));
        }
        groups.Add(("line items (productN_*, N up to 100)", lines));
        return groups;
    }

    public static IReadOnlyList<(string Name, string Meaning)> Types => CustomerTypes.All;

    [GeneratedRegex(@"\[\d+\]")]
    private static partial Regex RouteIndex();

    [GeneratedRegex(@"^mappings\[(\d+)\]")]
    private static partial Regex MappingIndex();
}
