using System.CommandLine;
using System.Globalization;
using System.Text;
using Audit.Api.Cli;
using Audit.Api.Composition;
using Audit.Projections.Embedded;
using Npgsql;

namespace Audit.Api.Features.Bench;

/// <summary>`audit bench`: every speed and size target, measured against PostgreSQL itself in the same run.</summary>
public static class BenchCommand
{
    public static Command Build(CommandLine cli)
    {
        var quick = new Option<bool>("--quick") { Description = "1M events instead of 10M (a few minutes)" };
        var engineOnly = new Option<bool>("--engine") { Description = "measure only the decision engine (no database)" };
        var importOnly = new Option<bool>("--import") { Description = "measure only the import of a 1M-line tracefs file" };
        var writersOnly = new Option<bool>("--writers") { Description = "measure only the 8 concurrent writers (400 appends of 100 inputs each, as in the full run; about 20 s)" };
        var events = new Option<long?>("--events") { Description = "synthetic events to store (overrides --quick)" };
        var json = new Option<bool>("--json") { Description = "print the figures as JSON, one key per figure" };
        var keep = new Option<bool>("--keep") { Description = "keep the bench schema afterwards (with --ui: the next --ui bench of the same --events measures the kept run instead of storing it again)" };
        var rebuild = new Option<bool>("--rebuild") { Description = "with --ui and a kept run: rebuild its projections before measuring (after a change to them), and report how long that took" };
        var ui = new Option<bool>("--ui") { Description = "measure only the web UI in headless Chromium: scrubber move to repaint, and first load (default 100,000 synthetic inputs; --events to change)" };
        var chromium = new Option<string>("--chromium") { Description = "the Chromium --ui drives", DefaultValueFactory = _ => "/usr/bin/chromium" };
        var peers = new Option<bool>("--peers") { Description = "also run Marten beside our store on the same events (bench/Audit.Bench.Peers, in a process of its own)" };
        var fuzz = new Option<int?>("--fuzz") { Description = "only the import fuzz: N mutated real traces through the HTTP import; exit 0 when none gave a server error or left a partial run" };
        var cmd = new Command("bench", """
            generates a realistic synthetic run and measures ingest, concurrent appends, rebuild, time-travel
            queries, why over HTTP, bytes per event and the engine, each against PostgreSQL itself (raw COPY,
            raw ordered read) on the same data; writes docs/benchmarks.md; exits 1 when a goal is missed.
            Not part of ./test.sh. `audit bench --ui --events 200000` instead times the web UI in headless
            Chromium on a synthetic run of that many inputs: scrubber move to map repainted (the whole space in
            view, then zoomed into 64 MiB of RAM), and first load; add --keep to measure the same run again later.
            With --peers, Marten 9.62 runs the same operations on the same events, each as a ratio to raw
            PostgreSQL beside ours (example: ./audit bench --events 600000 --peers).
            """)
        {
            quick, engineOnly, importOnly, writersOnly, events, json, keep, ui, rebuild, chromium, peers, fuzz,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(fuzz) is { } fuzzCount)
            {
                return await Fuzz.FuzzCommand.RunAsync(cli, parse, fuzzCount, parse.GetValue(json), ct);
            }

            List<Figure> figures;
            PeerReport? peerReport = null;
            string? peerError = null;
            var mode = parse.GetValue(ui) ? "ui" : parse.GetValue(engineOnly) ? "engine" : parse.GetValue(importOnly) ? "import" : parse.GetValue(writersOnly) ? "writers" : parse.GetValue(events) is not null ? "custom" : parse.GetValue(quick) ? "quick" : "full";
            var n = parse.GetValue(events) ?? (mode == "ui" ? 100_000 : parse.GetValue(quick) ? 1_000_000 : 10_000_000);
            if (mode == "ui" && !File.Exists(parse.GetValue(chromium)))
            {
                await cli.Err.WriteLineAsync($"audit: no Chromium at {parse.GetValue(chromium)} (apt-get install chromium, or --chromium PATH)");
                return ExitCodes.BadInput;
            }

            string pgVersion = "-";
            if (mode == "engine")
            {
                var r = EngineBench.Run(1_000_000);
                figures = [new Figure("engineFaultsPerSec", Math.Round(r.FaultsPerSec), 1_000_000, true, "faults/s", r.How)];
            }
            else
            {
                string cs;
                try
                {
                    (cs, _) = await Database.ResolveAsync(parse.GetValue(CommandLine.Db), cli.Err, ct);
                    await using var ds = NpgsqlDataSource.Create(cs);
                    pgVersion = await Projections.Storage.Baselines.ServerVersionAsync(ds, ct);
                }
                catch (Exception ex) when (ex is DatabaseUnavailableException or NpgsqlException)
                {
                    await cli.Err.WriteLineAsync("audit: " + ex.Message);
                    return ExitCodes.DatabaseUnavailable;
                }

                var suite = new BenchSuite(cs, m => cli.Err.WriteLine(m));
                try
                {
                    (figures, peerReport) = mode switch
                    {
                        "import" => ([await suite.ImportOnlyAsync(ct)], null),
                        "writers" => (await suite.WritersOnlyAsync(ct), null),
                        "ui" => (await new UiBench(cs, m => cli.Err.WriteLine(m)).RunAsync(n, 300, parse.GetValue(chromium)!, parse.GetValue(keep), ct, parse.GetValue(rebuild)), null),
                        _ => await suite.RunAsync(n, parse.GetValue(keep), parse.GetValue(peers), ct),
                    };
                    peerError = suite.PeerError;
                }
                catch (UiBenchFailed ex)
                {
                    await cli.Err.WriteLineAsync("audit: " + ex.Message);
                    return ExitCodes.NotFound;
                }
            }

            if (parse.GetValue(json))
            {
                var obj = figures.ToDictionary(f => f.Key, f => (object)f.Value);
                obj["mode"] = mode;
                obj["goalsMet"] = figures.All(f => f.Met);
                if (peerReport is not null)
                {
                    obj["peers"] = peerReport;
                }

                await cli.Out.WriteLineAsync(Output.ToJson(obj));
            }
            else
            {
                Output.Table(cli.Out, ["FIGURE", "GOAL", "MEASURED", "RATIO", "MET", "HOW"], figures.Select(Row));
                if (peerReport is not null)
                {
                    await cli.Out.WriteLineAsync();
                    await cli.Out.WriteLineAsync($"Peers on the same {peerReport.Events:N0} events ({peerReport.Baseline}):");
                    Output.Table(cli.Out, ["PEER FIGURE", "MARTEN", "OURS", "OURS VS MARTEN", "HOW"], peerReport.Rows.Select(PeerCells));
                }
            }

            if (mode != "engine" || !File.Exists(DocPath()))
            {
                WriteDoc(mode, n, figures, pgVersion, peerReport);
            }

            if (peerError is not null)
            {
                await cli.Err.WriteLineAsync("audit: peers: " + peerError);
                return ExitCodes.Internal;
            }

            return figures.All(f => f.Met) ? ExitCodes.Ok : ExitCodes.NotFound;
        });
        return cmd;
    }

    private static IReadOnlyList<string> Row(Figure f) =>
    [
        f.Key, (f.AtLeast ? ">= " : "<= ") + f.Goal.ToString("#,0.###", CultureInfo.InvariantCulture) + " " + f.Unit,
        f.Value.ToString("#,0.###", CultureInfo.InvariantCulture),
        (f.AtLeast ? f.Value / f.Goal : f.Goal / Math.Max(f.Value, 1e-9)).ToString("0.00", CultureInfo.InvariantCulture),
        f.Met ? "yes" : "NO", f.Note,
    ];

    private static IReadOnlyList<string> PeerCells(PeerRow r) =>
    [
        r.Figure, r.Marten.ToString("0.00", CultureInfo.InvariantCulture) + "x", r.Ours.ToString("0.00", CultureInfo.InvariantCulture) + "x",
        r.OursVsMarten.ToString("0.00", CultureInfo.InvariantCulture) + "x", r.How,
    ];

    /// <summary>The repository this host was built from (the folder holding Audit.sln), if it is there.</summary>
    internal static string? RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Audit.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir;
    }

    private static string DocPath() => Path.Combine(RepoRoot() ?? Directory.GetCurrentDirectory(), "docs", "benchmarks.md");

    /// <summary>Rewrites this mode's section of docs/benchmarks.md, keeping the other modes' sections and every note.</summary>
    private static void WriteDoc(string mode, long events, List<Figure> figures, string pgVersion, PeerReport? peers)
    {
        var path = DocPath();
        var s = new StringBuilder();
        s.AppendLine(mode switch
        {
            "import" => $"## import run, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, a 1,000,000-line tracefs file (`./audit bench --import`; also part of quick and full runs)",
            "writers" => $"## writers run, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, 8 writers of 400 appends each into an empty schema (`./audit bench --writers`; also part of quick and full runs)",
            _ => $"## {mode} run, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {events:N0} events",
        });
        s.AppendLine();
        s.AppendLine($"Machine: {Machine()}; PostgreSQL {pgVersion}; .NET {Environment.Version}.");
        s.AppendLine();
        s.AppendLine("| figure | goal | measured | ratio | met | how |");
        s.AppendLine("|---|---|---|---|---|---|");
        foreach (var f in figures)
        {
            var r = Row(f);
            s.AppendLine($"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |");
        }

        if (peers is not null)
        {
            s.AppendLine();
            s.AppendLine($"### Peers (`--peers`): Marten 9.62 and our store on the same {peers.Events:N0} events, as ratios to raw PostgreSQL ({peers.Baseline})");
            s.AppendLine();
            s.AppendLine("| figure | Marten | ours | ours vs Marten (Marten's time over ours) | how |");
            s.AppendLine("|---|---|---|---|---|");
            foreach (var c in peers.Rows.Select(PeerCells))
            {
                s.AppendLine($"| `{c[0]}` | {c[1]} | {c[2]} | {c[3]} | {c[4]} |");
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, Merge(File.Exists(path) ? File.ReadAllText(path) : null, mode, s.ToString()));
    }

    /// <summary>
    /// The document with <paramref name="section"/> in place of the mode's last one: the mode sections
    /// (## full run, ## quick run, ## import run) by mode, then every "## Notes" section in its order.
    /// </summary>
    internal static string Merge(string? existing, string mode, string section)
    {
        var sections = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var notes = new List<string>();
        string? current = null;
        var sb = new StringBuilder();
        void End()
        {
            if (current == "Notes")
            {
                notes.Add(sb.ToString());
            }
            else if (current is not null)
            {
                sections[current] = sb.ToString();
            }

            sb.Clear();
        }

        foreach (var line in (existing ?? "").Split('\n').Select(l => l.TrimEnd('\r')))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                End();
                current = line[3..].Split(' ')[0];
            }

            if (current is not null)
            {
                sb.AppendLine(line);
            }
        }

        End();
        sections[mode] = section;
        var doc = new StringBuilder();
        doc.AppendLine("# Benchmarks");
        doc.AppendLine();
        doc.AppendLine("Written by `./audit bench [--quick]`: every figure is measured in one process against PostgreSQL itself on");
        doc.AppendLine("the same data in the same run (raw COPY BINARY into a bare table, a raw ordered read), so the ratios hold on");
        doc.AppendLine("any machine. Sections below are replaced by the next run of the same mode; notes on misses follow them.");
        doc.AppendLine();
        foreach (var text in sections.Values.Concat(notes))
        {
            doc.Append(text.TrimEnd()).AppendLine().AppendLine();
        }

        return doc.ToString().TrimEnd() + Environment.NewLine;
    }

    private static string Machine()
    {
        string Read(string file, string key) =>
            File.Exists(file) ? File.ReadLines(file).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?" : "?";
        var kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "?";
        return $"{Environment.ProcessorCount} cores ({Read("/proc/cpuinfo", "model name")}), {Read("/proc/meminfo", "MemTotal")} memory, Linux {kernel}";
    }
}
