using Audit.Api.Composition;
using Audit.Api.Features.Ingest;
using Audit.Api.Features.Runs;
using Audit.Projections.Storage;
using MediatR;
using Npgsql;

namespace Audit.Api.Http;

/// <summary>The minimal-API host: each endpoint sends the same MediatR request as the command line.</summary>
public static class HttpApp
{
    public static WebApplication Build(string[] args, NpgsqlDataSource dataSource, string? urls = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        if (urls is not null)
        {
            builder.WebHost.UseUrls(urls);
        }

        builder.Services.AddAudit(dataSource);
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        var app = builder.Build();
        Map(app);
        return app;
    }

    /// <summary>A query result as HTTP: 200 with the body, 404 or 400 as problem details.</summary>
    public static IResult Answer<T>(Features.Shared.QueryResult<T> r) => r.Status switch
    {
        Features.Shared.QueryStatus.Ok => Results.Json(r.Value, Cli.Output.Json),
        Features.Shared.QueryStatus.NotFound => Results.Problem(title: "not found", detail: r.Error, statusCode: 404),
        _ => Results.Problem(title: "bad input", detail: r.Error, statusCode: 400),
    };

    public static void Map(WebApplication app)
    {
        app.MapOpenApi();
        app.MapGet("/runs", (IMediator m, CancellationToken ct) => m.Send(new ListRuns(), ct));
        app.MapGet("/runs/{run}/why", async (string run, string? gpa, string? at, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.Why.GetWhy(run, gpa ?? "", at), ct)));
        app.MapGet("/runs/{run}/state", async (string run, string? at, string? gpa, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.State.GetState(run, at, gpa), ct)));
        app.MapGet("/runs/{run}/history", async (string run, string? gpa, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.History.GetHistory(run, gpa ?? ""), ct)));
        app.MapPost("/runs/{run}/events", async (string run, HttpRequest req, IMediator m, CancellationToken ct) =>
        {
            long? expected = long.TryParse(req.Query["expectedVersion"], out var v) ? v : null;
            var key = req.Headers["Idempotency-Key"].FirstOrDefault();
            var outcome = await m.Send(new AppendEvents(run, req.Body, key, expected), ct);
            if (outcome.Error is { } e)
            {
                return Results.Problem(title: "bad input", detail: e.ToString(), statusCode: 400, extensions: new Dictionary<string, object?> { ["line"] = e.Line });
            }

            var r = outcome.Result!;
            return r.Status == AppendStatus.Conflict
                ? Results.Problem(title: "version conflict", detail: $"run {run} is at version {r.Version}, not {expected}", statusCode: 409)
                : Results.Ok(new { run, status = r.Status.ToString().ToLowerInvariant(), firstSeq = r.FirstSeq, lastSeq = r.LastSeq, events = r.InputCount, version = r.Version });
        });
    }
}
