using Audit.Api.Features.Shared;

namespace Audit.Api.Http.Security;

/// <summary>
/// The first middleware after routing: the bearer token when one is set (every path but
/// <see cref="PublicPaths"/>), then the run ids of the route and of the query (/diff's a and b, replay's save), checked once here
/// so that no handler sees one that is not valid.
/// </summary>
public static class RequestGuard
{
    public static void Use(WebApplication app, HttpOptions opts) => app.Use(async (ctx, next) =>
    {
        if (opts.Token is { } token && !PublicPaths.IsPublic(ctx.Request) && !Tokens.Matches(Tokens.Presented(ctx.Request), token))
        {
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
            await Results.Problem(
                title: "unauthorized",
                detail: "this server needs 'Authorization: Bearer <AUDIT_TOKEN>' on every request but /healthz and the web UI's files",
                statusCode: 401).ExecuteAsync(ctx);
            return;
        }

        if (RunIdProblem(ctx) is { } problem)
        {
            await Results.Problem(title: "bad run id", detail: problem, statusCode: 400).ExecuteAsync(ctx);
            return;
        }

        await next();
    });

    private static readonly string[] DiffKeys = ["a", "b"];
    private static readonly string[] SaveKey = ["save"];

    private static string? RunIdProblem(HttpContext ctx)
    {
        if (ctx.GetRouteValue("run") is string run && RunIds.Problem(run) is { } p)
        {
            return p;
        }

        // /diff names its runs in the query, and replay's save names the run it stores.
        var keys = ctx.Request.Path.Equals("/diff", StringComparison.Ordinal) ? DiffKeys : SaveKey;
        foreach (var key in keys)
        {
            foreach (var id in ctx.Request.Query[key])
            {
                if (RunIds.Problem(id) is { } q)
                {
                    return $"{key}: {q}";
                }
            }
        }

        return null;
    }
}
