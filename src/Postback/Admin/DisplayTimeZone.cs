using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.EntityFrameworkCore;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Admin;

/// Puts the signed-in organization's display time zone where Fmt finds it, for every page.
public sealed class DisplayTimeZoneFilter(PostbackDb db) : IAsyncPageFilter
{
    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var http = context.HttpContext;
        if (http.User.Identity?.AuthenticationType == AdminSetup.Scheme && http.User.FindFirst(ApiKeyAuthenticationHandler.OrganizationClaim) is not null)
        {
            var organizationId = http.User.OrganizationId();
            var id = await db.Organizations.AsNoTracking().Where(o => o.Id == organizationId).Select(o => o.TimeZone).FirstOrDefaultAsync(http.RequestAborted);
            if (id is not null && id != "UTC" && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone))
            {
                http.Items[Fmt.ZoneItem] = zone;
            }
        }
        await next();
    }
}
