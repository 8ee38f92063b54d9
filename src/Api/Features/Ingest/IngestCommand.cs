using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.Ingest;

public static class IngestCommand
{
    public static Command Build(CommandLine cli)
    {
        var files = new Argument<string[]>("FILE") { Arity = ArgumentArity.OneOrMore, Description = "trace files, or capture folders (every file in one a format recognises, as one run named after the folder); several files of one run are merged by timestamp" };
        var run = new Option<string?>("--run") { Description = "run id for all files (default: each file's name up to the first dot)" };
        var format = new Option<string>("--format") { Description = "auto|ndjson|strace|ftrace|perf|qemu|smaps|bpftrace|stage2", DefaultValueFactory = _ => "auto" };
        format.AcceptOnlyFromAmong(TraceFiles.Formats);
        var offsets = new Option<string[]>("--clock-offset")
        {
            Description = "FILE=SECONDS: add SECONDS (may be negative, fractional) to FILE's times before merging, for a file on another clock "
                + "(e.g. QEMU's wall clock beside tracefs's mono: the difference of one event seen in both); repeatable. Such a file is not aligned automatically",
            AllowMultipleArgumentsPerToken = false,
        };
        var policy = new Option<string?>("--policy") { Description = "decide under this policy instead of the one matching the run's HostDescribed, or the host inferred from the files (see docs/rules.md)" };
        var cmd = new Command("ingest", """
            store the events of trace files as runs.
            A bad line stops the import with FILE:LINE: reason (exit 2) and nothing from the file is stored.
            Ingesting the same files again stores nothing (the batch key is the files' content and the run id).
            Formats: ndjson (../shared/spec/events.md), strace (-f with -t/-tt/-ttt/-r or none, -yy, --kvm=vcpu, -X, -T...),
            ftrace (tracefs text, trace_pipe, options/fields, latency format, trace-cmd report), perf (perf script, any -F),
            bpftrace (an ioctl log: fills what strace cannot decode), smaps (/proc/PID/smaps or maps: completes strace's
            mmaps), qemu (its trace events), stage2 (arm64 debugfs stage2_page_tables); auto tells them apart.
            A folder is one run named after it: every file a format recognises, the others listed as skipped with why.
            Several files of one run are merged on the tracefs clock: strace is aligned through the mmap results
            both record; for other clocks give --clock-offset.
            Without a HostDescribed event the host (arch, VMX/SVM, TDP/shadow, kernel) is inferred from the files,
            recorded as inferred and named in the summary; --policy overrides it. See docs/importing.md.
            Examples: audit ingest samples/gh200-gpu-passthrough.ndjson --run gh
                      audit ingest samples/real/x86-pvm-6.18 --run vm1
                      audit ingest strace.txt bpftrace_ioctls.txt trace.txt smaps.txt --run vm1 --policy x86-shadow
            """)
        {
            files, run, format, policy, offsets,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var given = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var o in parse.GetValue(offsets) ?? [])
            {
                var eq = o.LastIndexOf('=');
                if (eq <= 0 || !decimal.TryParse(o[(eq + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
                {
                    await cli.Err.WriteLineAsync($"--clock-offset {o}: expected FILE=SECONDS, e.g. qemu.log=-1795305690.5");
                    return ExitCodes.BadInput;
                }

                given[o[..eq]] = (long)(seconds * 1_000_000_000m);
            }

            // Without --run each file names its run; such an id is checked here, as --run is by the parser.
            foreach (var file in parse.GetValue(run) is null ? parse.GetValue(files)! : [])
            {
                if (Shared.RunIds.Problem(TraceFiles.DefaultRunId(file)) is { } problem)
                {
                    await cli.Err.WriteLineAsync($"{file}: {problem} (the run id comes from the file name); pass --run ID");
                    return ExitCodes.BadInput;
                }
            }

            var progress = new Progress(cli.Err);
            var result = await mediator.Send(new IngestFiles(parse.GetValue(files)!, parse.GetValue(run), parse.GetValue(format)!, parse.GetValue(policy), given, progress.Report), ct);
            progress.Done();
            if (result.Error is { } error)
            {
                await cli.Err.WriteLineAsync(error.ToString());
                return ExitCodes.BadInput;
            }

            await ReportAsync(cli, result);
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }

    /// <summary>What each run stored and how every line of each file was used (ingest and capture print the same).</summary>
    public static async Task ReportAsync(CommandLine cli, IngestResult result)
    {
        foreach (var r in result.Runs)
        {
            var from = string.Join(", ", r.Files.Select(Path.GetFileName));
            await cli.Out.WriteLineAsync(r.Duplicate
                ? $"{r.Run}: {from} was already stored (seq {r.FirstSeq}..{r.LastSeq}); nothing added"
                : $"{r.Run}: {r.Inputs} events from {from} decided under {r.Policy}: seq {r.FirstSeq}..{r.LastSeq}, {r.Stored - r.Inputs} derived");
            foreach (var skip in r.Skipped ?? [])
            {
                await cli.Out.WriteLineAsync("  skipped " + skip);
            }

            if (r.Host is not null)
            {
                await cli.Out.WriteLineAsync("  " + r.Host);
            }

            if (r.Note is not null)
            {
                await cli.Out.WriteLineAsync("  " + r.Note);
            }

            foreach (var a in r.Accounts.Where(a => a.Format != "ndjson"))
            {
                await cli.Out.WriteLineAsync($"  {Path.GetFileName(a.File)} ({a.Format}): {a.Lines} lines, {a.Events} events, {a.Counted.Values.Sum()} lines counted without an event:");
                foreach (var note in a.Notes ?? [])
                {
                    await cli.Out.WriteLineAsync($"    note: {note}");
                }

                foreach (var (kind, n) in a.Counted.OrderByDescending(k => k.Value))
                {
                    await cli.Out.WriteLineAsync($"    {n,6}  {kind}");
                }
            }
        }
    }

    /// <summary>Reading progress of large files on standard error: one rewritten line on a terminal, a line per 10% elsewhere.</summary>
    private sealed class Progress(TextWriter err)
    {
        private readonly bool terminal = ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected;
        private int lastShown = -1;
        private bool open;

        public void Report(string file, long done, long total)
        {
            var pct = total == 0 ? 100 : (int)(done * 100 / total);
            if (pct == lastShown || (!terminal && pct / 10 == lastShown / 10 && pct != 100))
            {
                return;
            }

            lastShown = pct;
            var bar = new string('#', pct / 5).PadRight(20, '.');
            var text = $"  reading {Path.GetFileName(file)} [{bar}] {pct,3}% of {total / 1048576.0:N0} MiB";
            if (terminal)
            {
                err.Write("\r" + text);
                open = pct < 100;
                if (!open)
                {
                    err.WriteLine();
                }
            }
            else
            {
                err.WriteLine(text);
            }

            if (pct == 100)
            {
                lastShown = -1;
            }
        }

        public void Done()
        {
            if (open)
            {
                err.WriteLine();
            }
        }
    }
}
