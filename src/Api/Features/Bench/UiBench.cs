using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Audit.Api.Features.Ingest;
using Audit.Api.Http;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Npgsql;

namespace Audit.Api.Features.Bench;

/// <summary>The browser side of the UI bench gave no figures; the message says what to look at.</summary>
public sealed class UiBenchFailed(string message) : Exception(message);

/// <summary>What the page measured with performance marks (src/Api/Web/bench.js).</summary>
public sealed record UiBenchResult(int Moves, int Served, long LastSeq, double FirstLoadMs, double RepaintP50Ms, double RepaintP95Ms, double RepaintMaxMs, int Blocks);

/// <summary>
/// `audit bench --ui`: a synthetic run stored in a schema of its own, the real host on a loopback port,
/// and headless Chromium opening the page in its bench mode. The page times the first load of the run
/// and each scrubber move to the repaint that served it, and posts the figures back here.
/// </summary>
public sealed class UiBench(string connectionString, Action<string> log)
{
    private const string Run = "bench";

    public async Task<List<Figure>> RunAsync(long inputs, int moves, string chromium, bool keep, CancellationToken ct)
    {
        var schema = "bench_ui_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        await Baselines.CreateSchemaAsync(connectionString, schema, ct);
        await using var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema }.ConnectionString);
        try
        {
            await Migrator.MigrateAsync(ds, ct);
            var received = new TaskCompletionSource<UiBenchResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            await using var app = HttpApp.Build([], ds, "http://127.0.0.1:0", new HttpOptions(null, 1 << 20));
            // Only this host takes the page's figures: `serve` has no such endpoint.
            app.MapPost("/bench/ui-result", async (HttpRequest req) =>
            {
                received.TrySetResult((await JsonSerializer.DeserializeAsync<UiBenchResult>(req.Body, Cli.Output.Json))!);
                return Results.NoContent();
            });
            var events = await StoreAsync(app.Services.GetRequiredService<RunWriter>(), inputs, ct);
            await Baselines.VacuumAnalyzeAsync(ds, ct);
            await app.StartAsync(ct);
            var url = $"{app.Urls.First()}/?run={Run}&bench={moves}";
            log($"ui: {events:N0} events stored; opening {url} in {chromium}");
            var result = await MeasureAsync(chromium, url, received.Task, ct);
            await app.StopAsync(ct);
            var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
            var how = $"{result.Served} of {result.Moves} scrubber moves to seeded seqs of a {events:N0}-event synthetic run ({inputs:N0} inputs), one per frame; "
                + $"p50 {result.RepaintP50Ms:0.0} ms, max {result.RepaintMaxMs:0.0} ms; {result.Blocks:N0} stage-2 blocks at the last point; headless Chromium, 1280x900; load average {load} on {Environment.ProcessorCount} cores";
            return
            [
                new Figure("uiScrubRepaintP95Ms", Math.Round(result.RepaintP95Ms, 1), 100, false, "ms", how),
                new Figure("uiFirstLoadMs", Math.Round(result.FirstLoadMs, 1), 1500, false, "ms", $"page script start to the first map painted (GET /runs/{{run}}/map at the end; the timeline follows it); load average {load}"),
            ];
        }
        finally
        {
            if (!keep)
            {
                await Baselines.DropSchemaAsync(connectionString, schema, CancellationToken.None);
            }
        }
    }

    /// <summary>Decides and stores the synthetic inputs in batches, as a client posting a long trace would.</summary>
    private async Task<long> StoreAsync(RunWriter writer, long inputs, CancellationToken ct)
    {
        var batch = new List<TraceEvent>(20_000);
        long stored = 0;
        foreach (var (ts, e) in SyntheticRun.Generate(inputs, 42))
        {
            batch.Add(new TraceEvent(0, ts, e, []));
            if (batch.Count == batch.Capacity)
            {
                stored = await Flush(writer, batch, ct);
                log($"ui: stored {stored:N0} events");
            }
        }

        return batch.Count > 0 ? await Flush(writer, batch, ct) : stored;
    }

    private static async Task<long> Flush(RunWriter writer, List<TraceEvent> batch, CancellationToken ct)
    {
        var outcome = await writer.AppendAsync(Run, batch, null, null, "arm64/6.17", ct);
        batch.Clear();
        return outcome.Result?.Version ?? throw new InvalidOperationException(outcome.Error);
    }

    /// <summary>Runs Chromium until the page posts its figures (or ten minutes pass), then ends it.</summary>
    private static async Task<UiBenchResult> MeasureAsync(string chromium, string url, Task<UiBenchResult> received, CancellationToken ct)
    {
        var profile = Directory.CreateTempSubdirectory("audit-ui-bench-");
        var psi = new ProcessStartInfo(chromium)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            ArgumentList = { "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--user-data-dir=" + profile.FullName, url },
        };
        using var browser = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {chromium}");
        _ = browser.StandardError.ReadToEndAsync(ct);
        _ = browser.StandardOutput.ReadToEndAsync(ct);
        try
        {
            return await received.WaitAsync(TimeSpan.FromMinutes(10), ct);
        }
        catch (TimeoutException)
        {
            throw new UiBenchFailed($"the page posted no figures within 10 minutes; open {url} in a browser to see why");
        }
        finally
        {
            browser.Kill(entireProcessTree: true);
            await browser.WaitForExitAsync(CancellationToken.None);
            profile.Delete(recursive: true);
        }
    }
}
