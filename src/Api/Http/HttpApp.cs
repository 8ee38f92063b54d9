using Audit.Api.Composition;
using Audit.Api.Features.Ingest;
using Audit.Api.Features.Runs;
using Audit.Api.Features.Shared;
using Audit.Projections.Storage;
using MediatR;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Npgsql;

namespace Audit.Api.Http;

/// <summary>
/// HTTP settings: the bearer token every request but /healthz and the UI's files needs (none: open),
/// the largest request body, the certificate of https:// URLs, and where a request that failed on
/// the server's side is told in one line (serve: its standard error).
/// </summary>
public sealed record HttpOptions(string? Token, long MaxBodyBytes, System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate = null, DatabaseRecovery? Recovery = null, Action<string>? Log = null)
{
    public static HttpOptions FromEnvironment() => new(
        Environment.GetEnvironmentVariable("AUDIT_TOKEN") is { Length: > 0 } t ? t : null,
        long.TryParse(Environment.GetEnvironmentVariable("AUDIT_MAX_BODY_BYTES"), out var max) && max > 0 ? max : 256L << 20);

    /// <summary>Why AUDIT_MAX_BODY_BYTES cannot be used, or null (unset: 256 MiB); serve refuses to start on it.</summary>
    public static string? MaxBodyProblem(string? value) =>
        value is { Length: > 0 } v && !(long.TryParse(v, out var n) && n > 0)
            ? $"AUDIT_MAX_BODY_BYTES must be a whole number of bytes above 0 (got '{v}'); unset it for the default of 256 MiB"
            : null;
}

/// <summary>The minimal-API host: each endpoint sends the same MediatR request as the command line.</summary>
public static class HttpApp
{
    public static WebApplication Build(string[] args, NpgsqlDataSource dataSource, string? urls = null, HttpOptions? options = null, Action<WebApplicationBuilder>? configure = null)
    {
        var opts = options ?? HttpOptions.FromEnvironment();
        // The content root is the tool's own folder, not the working directory: an appsettings.json
        // lying where serve is started must not reconfigure it.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (urls is not null)
        {
            builder.WebHost.UseUrls(urls);

            // Only --urls decides where serve listens (it was checked against AUDIT_TOKEN): endpoints
            // configured elsewhere (Kestrel__Endpoints__* variables) would otherwise replace it unchecked.
            builder.WebHost.ConfigureKestrel(k => k.Configure(new ConfigurationBuilder().Build()));
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = opts.MaxBodyBytes;
            if (opts.Certificate is { } cert)
            {
                k.ConfigureHttpsDefaults(h => h.ServerCertificate = cert);
            }
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        // A start that fails (a port in use, a bad certificate) is told in one line by `serve`; the host's
        // own log of it would print the exception's stack trace first.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);

        // Likewise a request that fails: the handler below answers it and tells it in one line; the
        // middleware's own log would print the exception's stack trace on serve's console.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", LogLevel.None);
        configure?.Invoke(builder);
        builder.Services.AddAudit(dataSource);
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        var app = builder.Build();
        app.UseExceptionHandler(e => e.Run(async ctx =>
        {
            var ex = ctx.Features.Get<IExceptionHandlerFeature>()?.Error;
            var (status, title) = ex switch
            {
                BadHttpRequestException { StatusCode: 413 } or BodyTooLargeException => (413, "request body too large"),
                BadHttpRequestException b => (b.StatusCode, "bad request"),
                _ when ex is not null && Cli.Failures.IsUnstorableText(ex) => (400, "bad input: a character the database cannot store (NUL or invalid UTF-8)"),
                _ when ex is not null && Cli.Failures.IsConnectionLoss(ex) => (503, "database unavailable"),
                _ => (500, "internal error"),
            };
            if (status >= 500 && ex is not null && opts.Log is { } log)
            {
                log(ServerFailure(ctx.Request, status, ex));
            }

            if (status == 503 && opts.Recovery is { } recovery)
            {
                recovery.Trigger();
                ctx.Response.Headers.RetryAfter = "2";
            }

            await Results.Problem(title: title, detail: ex?.Message, statusCode: status).ExecuteAsync(ctx);
        }));
        Security.RequestGuard.Use(app, opts);
        app.Use(async (ctx, next) =>
        {
            // Bodies over the limit: refused up front when the length is known, while reading otherwise.
            if (ctx.Request.ContentLength > opts.MaxBodyBytes)
            {
                await Results.Problem(title: "request body too large", detail: $"the limit is {opts.MaxBodyBytes} bytes (AUDIT_MAX_BODY_BYTES)", statusCode: 413).ExecuteAsync(ctx);
                return;
            }

            if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f)
            {
                f.MaxRequestBodySize = opts.MaxBodyBytes;
            }

            ctx.Request.Body = new LimitedStream(ctx.Request.Body, opts.MaxBodyBytes);
            await next();
        });
        Map(app, opts);
        return app;
    }

    /// <summary>One line for serve's console about a request the server could not answer (AUDIT_DEBUG=1 adds a bug's stack trace).</summary>
    private static string ServerFailure(HttpRequest req, int status, Exception ex)
    {
        var what = $"audit: {req.Method} {req.Path}: {status}, ";
        if (status == 503)
        {
            return what + $"the database went away ({Cli.Failures.OneLine(ex.Message)}); later requests work once it is back";
        }

        var line = what + $"unexpected error ({ex.GetType().Name}: {Cli.Failures.OneLine(ex.Message)}); this is a bug: report it with the request (AUDIT_DEBUG=1 prints the stack trace)";
        return Environment.GetEnvironmentVariable("AUDIT_DEBUG") == "1" ? line + "\n" + ex : line;
    }

    /// <summary>A query result as HTTP: 200 with the body, 404 or 400 as problem details.</summary>
    public static IResult Answer<T>(QueryResult<T> r) => r.Status switch
    {
        QueryStatus.Ok => Results.Json(r.Value, Cli.Output.Json),
        QueryStatus.NotFound => Results.Problem(title: "not found", detail: r.Error, statusCode: 404),
        _ => Results.Problem(title: "bad input", detail: r.Error, statusCode: 400),
    };

    public static void Map(WebApplication app, HttpOptions opts)
    {
        app.MapOpenApi();
        app.MapUi();
        app.MapGet("/healthz", async (NpgsqlDataSource db, CancellationToken ct) =>
        {
            await using var cmd = db.CreateCommand("select 1");
            await cmd.ExecuteScalarAsync(ct);
            return Results.Json(new { status = "ok" });
        }).ExcludeFromDescription();
        app.MapGet("/runs", async (IMediator m, CancellationToken ct) => Results.Json(await m.Send(new ListRuns(), ct), Cli.Output.Json));
        app.MapGet("/runs/{run}/why", async (string run, string? gpa, string? at, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.Why.GetWhy(run, gpa ?? "", at), ct)));
        app.MapGet("/runs/{run}/state", async (string run, string? at, string? gpa, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.State.GetState(run, at, gpa), ct)));
        app.MapGet("/runs/{run}/history", async (string run, string? gpa, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.History.GetHistory(run, gpa ?? ""), ct)));
        app.MapGet("/runs/{run}/timeline", async (string run, string? by, int? buckets, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.Timeline.GetTimeline(run, by, buckets), ct)));
        app.MapGet("/runs/{run}/map", async (string run, string? at, string? windows, HttpResponse res, IMediator m, CancellationToken ct) =>
        {
            var r = await m.Send(new Features.Map.GetMap(run, at, windows), ct);
            if (r.Value?.ServerTiming is { } timing)
            {
                res.Headers["Server-Timing"] = timing;
            }

            return Answer(r);
        });
        app.MapGet("/runs/{run}/find", async (string run, string? type, string? rule, long? after, string? direction, IMediator m, CancellationToken ct) =>
            Answer(rule is not null && type is null
                ? await m.Send(new Features.Timeline.FindRule(run, rule, after ?? 0, direction == "back"), ct)
                : await m.Send(new Features.Timeline.FindEvent(run, type ?? "", after ?? 0, direction == "back"), ct)));
        app.MapGet("/policies", async (IMediator m, CancellationToken ct) => Results.Json(await m.Send(new Features.Replay.ListPolicies(), ct), Cli.Output.Json));
        app.MapGet("/diff", async (string? a, string? b, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.Diff.DiffRuns(a ?? "", b ?? ""), ct)));
        app.MapGet("/runs/{run}/export", async (string run, string? format, IMediator m, CancellationToken ct) =>
        {
            var r = await m.Send(new Features.Export.ExportRun(run, format ?? "ndjson"), ct);
            return r.Status == QueryStatus.Ok ? Results.Text(r.Value!.Content, r.Value.ContentType) : Answer(r);
        });
        app.MapGet("/runs/{run}/lint", async (string run, string? format, IMediator m, CancellationToken ct) =>
        {
            var r = await m.Send(new Features.Lint.GetLint(run), ct);
            return r.Status == QueryStatus.Ok && format == "sarif"
                ? Results.Text(Features.Lint.Sarif.From(r.Value!).ToJsonString(Cli.Output.Json), "application/sarif+json")
                : Answer(r);
        });
        app.MapGet("/runs/{run}/bisect", async (string run, string? from, string? to, string? gpa, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.Bisect.BisectRun(run, from, to, gpa), ct)));

        // Writes (the token is checked for every request by Security.RequestGuard).
        var writes = app.MapGroup("");
        writes.MapPost("/runs/{run}/events", async (string run, HttpRequest req, IMediator m, CancellationToken ct) =>
        {
            long? expected = long.TryParse(req.Query["expectedVersion"], out var v) ? v : null;
            var key = req.Headers["Idempotency-Key"].FirstOrDefault();
            var outcome = await m.Send(new AppendEvents(run, req.Body, key, expected), ct);
            if (outcome.Error is { } e)
            {
                return BadInput(e);
            }

            var r = outcome.Result!;
            return r.Status == AppendStatus.Conflict
                ? Results.Problem(title: "version conflict", detail: $"run {run} is at version {r.Version}, not {expected}", statusCode: 409)
                : Results.Json(new AppendView(run, r.Status.ToString().ToLowerInvariant(), r.FirstSeq, r.LastSeq, r.InputCount, r.EventCount, r.Version), Cli.Output.Json);
        });
        writes.MapPost("/runs/{run}/import", async (string run, string? format, string? policy, HttpRequest req, IMediator m, CancellationToken ct) =>
        {
            var dir = Directory.CreateTempSubdirectory("audit-import-");
            try
            {
                var file = Path.Combine(dir.FullName, SafeName(run) + ".trace");
                await using (var f = File.Create(file))
                {
                    await req.Body.CopyToAsync(f, ct);
                }

                var result = await m.Send(new IngestFiles([file], run, format ?? "auto", policy), ct);
                if (result.Error is { } e)
                {
                    return BadInput(e with { File = "body" });
                }

                return Results.Json(result.Runs, Cli.Output.Json);
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        });
        writes.MapPost("/runs/{run}/replay", async (string run, string? policy, string? save, [Microsoft.AspNetCore.Mvc.FromQuery] string[]? set, IMediator m, CancellationToken ct) =>
            Answer(await m.Send(new Features.Replay.ReplayRun(run, policy ?? "", save, set ?? []), ct)));
    }

    public sealed record AppendView(string Run, string Status, long FirstSeq, long LastSeq, int Events, int Stored, long Version);

    private static IResult BadInput(Projections.Serialization.TraceError e) =>
        Results.Problem(title: "bad input", detail: e.ToString(), statusCode: 400, extensions: new Dictionary<string, object?> { ["line"] = e.Line });

    private static string SafeName(string run) => string.Concat(run.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
}

public sealed class BodyTooLargeException(long limit) : IOException($"the request body exceeds {limit} bytes (AUDIT_MAX_BODY_BYTES)");

/// <summary>Fails a read that would take the body past the limit (bodies without a Content-Length).</summary>
internal sealed class LimitedStream(Stream inner, long limit) : Stream
{
    private long _read;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int Count(int n)
    {
        _read += n;
        return _read > limit ? throw new BodyTooLargeException(limit) : n;
    }
}
