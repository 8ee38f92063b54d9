using System.Diagnostics;
using System.Text.Json;
using Audit.Api.Features.Ingest;
using Audit.Api.Http;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Npgsql;

namespace Audit.Api.Features.Bench;

/// <summary>The browser side of the UI bench gave no figures; the message says what to look at.</summary>
public sealed class UiBenchFailed(string message) : Exception(message);

/// <summary>What the page measured with performance marks (src/Api/Web/bench.js): the first load, and a scrub of the whole space and one zoomed in.</summary>
public sealed record UiBenchResult(int Moves, long LastSeq, double FirstLoadMs, UiScrubPass Whole, UiScrubPass Zoomed);

/// <summary>One pass of scrubber moves: move-to-repaint percentiles, the blocks and drawn spans at its last point, and where its map requests spent their time.</summary>
public sealed record UiScrubPass(int Served, double RepaintP50Ms, double RepaintP95Ms, double RepaintMaxMs, int Blocks, int Spans, UiProfile Profile);

/// <summary>[p50, p95] of each part of the map requests of a pass.</summary>
public sealed record UiProfile(int Requests, double?[] ServerDbMs, double?[] ServerBuildMs, double?[] FirstByteMs, double?[] TransferMs, double?[] Bytes, double?[] ParseMs, double?[] DrawMs)
{
    public override string ToString() => FormattableString.Invariant(
        $"split of its {Requests} map requests, p50/p95: server database {Ms(ServerDbMs)}, building the answer {Ms(ServerBuildMs)}, request to first byte {Ms(FirstByteMs)}, transfer {Ms(TransferMs)}, JSON parse {Ms(ParseMs)}, canvas draw {Ms(DrawMs)}; {Bytes[0] / 1024:0.#}/{Bytes[1] / 1024:0.#} KiB");

    private static string Ms(double?[] p) => FormattableString.Invariant($"{p[0]:0.#}/{p[1]:0.#} ms");
}

/// <summary>
/// `audit bench --ui`: a synthetic run stored in a schema of its own, the real host on a loopback port,
/// and headless Chromium opening the page in its bench mode. The page times the first load of the run
/// and each scrubber move to the repaint that served it, and posts the figures back here.
/// </summary>
public sealed class UiBench(string connectionString, Action<string> log)
{
    private const string Run = "bench";

    /// <summary>
    /// Times the page on a run of <paramref name="inputs"/> synthetic inputs in schema bench_ui_INPUTS.
    /// With <paramref name="keep"/> the schema stays, and the next bench of the same size measures the run
    /// stored there instead of storing it again (the 9,992,647 events of 5M inputs took this host four minutes, about 41,000 events/s, on 2026-12-04).
    /// </summary>
    /// <param name="rebuild">rebuild the kept run's projections first (they were stored by an older fold), timed.</param>
    public async Task<List<Figure>> RunAsync(long inputs, int moves, string chromium, bool keep, CancellationToken ct, bool rebuild = false)
    {
        var schema = FormattableString.Invariant($"bench_ui_{inputs}");
        await using (var admin = NpgsqlDataSource.Create(connectionString))
        {
            await using var create = admin.CreateCommand($"create schema if not exists \"{schema}\"");
            await create.ExecuteNonQueryAsync(ct);
        }

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
            var kept = await app.Services.GetRequiredService<EventStore>().GetRunAsync(Run, ct);
            long events;
            if (kept is not null && kept.InputCount == inputs)
            {
                events = kept.EventCount;
                if (rebuild)
                {
                    var clock = Stopwatch.StartNew();
                    await new Rebuilder(app.Services.GetRequiredService<EventStore>()).RebuildAsync(Run, ct: ct);
                    await Baselines.VacuumAnalyzeAsync(ds, ct);
                    log(FormattableString.Invariant($"ui: rebuilt the projections of the {events:N0}-event run in {clock.Elapsed.TotalSeconds:0.0} s"));
                }

                log($"ui: measuring the {events:N0}-event run kept in schema {schema} by an earlier --keep");
            }
            else if (kept is not null)
            {
                throw new UiBenchFailed($"schema {schema} holds a run of {kept.InputCount:N0} inputs, not {inputs:N0} (an interrupted bench?): drop it (drop schema {schema} cascade) and run again");
            }
            else
            {
                events = await StoreAsync(app.Services.GetRequiredService<RunWriter>(), inputs, ct);
                await Baselines.VacuumAnalyzeAsync(ds, ct);
            }

            await app.StartAsync(ct);
            var url = $"{app.Urls.First()}/?run={Run}&bench={moves}";
            log($"ui: {events:N0} events stored; opening {url} in {chromium}");
            var result = await MeasureAsync(chromium, url, received.Task, ct);
            await app.StopAsync(ct);
            var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
            string How(UiScrubPass p, string view) => FormattableString.Invariant(
                $"{p.Served} of {result.Moves} scrubber moves to seeded seqs of a {events:N0}-event synthetic run ({inputs:N0} inputs), one per frame, {view}; ")
                + FormattableString.Invariant($"p50 {p.RepaintP50Ms:0.0} ms, max {p.RepaintMaxMs:0.0} ms; {p.Blocks:N0} stage-2 blocks in view at the last point, drawn as {p.Spans:N0} spans; {p.Profile}; ")
                + $"headless Chromium, 1280x900; load average {load} on {Environment.ProcessorCount} cores";
            return
            [
                new Figure("uiScrubRepaintP95Ms", Math.Round(result.Whole.RepaintP95Ms, 1), 100, false, "ms", How(result.Whole, "the whole address space in view")),
                new Figure("uiScrubRepaintZoomedP95Ms", Math.Round(result.Zoomed.RepaintP95Ms, 1), 100, false, "ms", How(result.Zoomed, "zoomed into 64 MiB of guest RAM (0x40000000-0x44000000)")),
                new Figure("uiFirstLoadMs", Math.Round(result.FirstLoadMs, 1), 1500, false, "ms", $"page script start to the first map painted (the run's extents, then GET /runs/{{run}}/map of the windows in view at the end; the timeline follows it); load average {load}"),
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
