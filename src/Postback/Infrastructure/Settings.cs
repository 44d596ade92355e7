using System.Globalization;
using Microsoft.Extensions.Options;

namespace Postback.Infrastructure;

/// An options class that states its own rules. Each failure names the setting as the operator
/// writes it (Postback:Delivery:MaxInFlight), so a hub that refuses to start says what to fix.
public interface ISettings
{
    void Check(SettingChecks check);
}

/// The failures found in one section; Under("Delivery") checks a nested class with the same list.
public sealed class SettingChecks
{
    private readonly string _section;
    private readonly List<string> _failures;

    public SettingChecks(string section) : this(section, []) { }

    private SettingChecks(string section, List<string> failures) => (_section, _failures) = (section, failures);

    public IReadOnlyList<string> Failures => _failures;

    public string Name(string setting) => $"{_section}:{setting}";

    public SettingChecks Under(string setting) => new(Name(setting), _failures);

    public void Fail(string setting, string reason) => _failures.Add($"{Name(setting)} {reason}.");

    public void Range(string setting, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            Fail(setting, $"must be between {min} and {max}; it is {value}");
        }
    }

    public void Range(string setting, double value, double min, double max)
    {
        if (double.IsNaN(value) || value < min || value > max)
        {
            Fail(setting, $"must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}; it is {value.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// An absolute http or https URL, if set.
    public void HttpUrl(string setting, string? value)
    {
        if (!string.IsNullOrWhiteSpace(value)
            && (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
                || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment)))
        {
            Fail(setting, $"must be an absolute http or https URL without query, such as https://hub.example.com; it is '{Text.Clip(value, 200, "…")}'");
        }
    }
}

public sealed class SettingsValidator<T>(string section) : IValidateOptions<T> where T : class, ISettings
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var check = new SettingChecks(section);
        options.Check(check);
        return check.Failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(check.Failures);
    }
}

/// Options are bound one way: AddSettings binds a section, checks it with the class's own rules
/// and validates it on start, so a wrong setting stops the hub before it migrates the database
/// or listens (ValidateSettings runs the checks right after the host is built).
public static class SettingsSetup
{
    public static OptionsBuilder<T> AddSettings<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class, ISettings
    {
        services.AddSingleton<IValidateOptions<T>>(new SettingsValidator<T>(section));
        return services.AddOptions<T>().Bind(configuration.GetSection(section)).ValidateOnStart();
    }

    /// For the few settings registration itself depends on (which database, whether metrics are
    /// on): bound and checked with the same rules, now. Throws naming each wrong setting.
    public static T ReadSettings<T>(this IConfiguration configuration, string section) where T : class, ISettings, new()
    {
        var value = configuration.GetSection(section).Get<T>() ?? new T();
        var result = new SettingsValidator<T>(section).Validate(null, value);
        if (result.Failed)
        {
            throw new OptionsValidationException(section, typeof(T), result.Failures);
        }
        return value;
    }

    /// Every ValidateOnStart check, before anything touches the database.
    public static WebApplication ValidateSettings(this WebApplication app)
    {
        app.Services.GetService<IStartupValidator>()?.Validate();
        return app;
    }
}
