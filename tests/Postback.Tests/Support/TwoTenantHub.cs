namespace Postback.Tests.Support;

/// A class fixture: one hub for a whole test class, with the bootstrap organization and a
/// second one (its key in <see cref="OtherKey"/>) for isolation tests.
public sealed class TwoTenantHub : IAsyncLifetime
{
    public HubFactory Hub { get; private set; } = null!;

    public string OtherKey { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Hub = await HubFactory.StartAsync();
        (_, OtherKey) = await Hub.CreateOrganizationAsync("Other organization", 2002);
    }

    public async Task DisposeAsync() => await Hub.DisposeAsync();
}
