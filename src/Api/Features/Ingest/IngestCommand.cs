using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.Ingest;

public static class IngestCommand
{
    public static Command Build(CommandLine cli)
    {
        var files = new Argument<string[]>("FILE") { Arity = ArgumentArity.OneOrMore, Description = "trace files; several files of one run are merged by timestamp" };
        var run = new Option<string?>("--run") { Description = "run id for all files (default: each file's name up to the first dot)" };
        var format = new Option<string>("--format") { Description = "auto|ndjson|strace|ftrace|perf|qemu|smaps", DefaultValueFactory = _ => "auto" };
        format.AcceptOnlyFromAmong(TraceFiles.Formats);
        var policy = new Option<string?>("--policy") { Description = "decide under this policy instead of the one matching the run's HostDescribed (see docs/rules.md)" };
        var cmd = new Command("ingest", """
            store the events of trace files as runs.
            A bad line stops the import with FILE:LINE: reason (exit 2) and nothing from the file is stored.
            Ingesting the same files again stores nothing (the batch key is the files' content and the run id).
            Example: audit ingest samples/gh200-gpu-passthrough.ndjson --run gh
            """)
        {
            files, run, format, policy,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var result = await mediator.Send(new IngestFiles(parse.GetValue(files)!, parse.GetValue(run), parse.GetValue(format)!, parse.GetValue(policy)), ct);
            if (result.Error is { } error)
            {
                await cli.Err.WriteLineAsync(error.ToString());
                return ExitCodes.BadInput;
            }

            foreach (var r in result.Runs)
            {
                var from = string.Join(", ", r.Files.Select(Path.GetFileName));
                await cli.Out.WriteLineAsync(r.Duplicate
                    ? $"{r.Run}: {from} was already stored (seq {r.FirstSeq}..{r.LastSeq}); nothing added"
                    : $"{r.Run}: {r.Inputs} events from {from} decided under {r.Policy}: seq {r.FirstSeq}..{r.LastSeq}, {r.Stored - r.Inputs} derived");
                if (r.Note is not null)
                {
                    await cli.Out.WriteLineAsync("  " + r.Note);
                }

                foreach (var a in r.Accounts.Where(a => a.Format != "ndjson"))
                {
                    await cli.Out.WriteLineAsync($"  {Path.GetFileName(a.File)} ({a.Format}): {a.Lines} lines, {a.Events} events, {a.Counted.Values.Sum()} lines counted without an event:");
                    foreach (var (kind, n) in a.Counted.OrderByDescending(k => k.Value))
                    {
                        await cli.Out.WriteLineAsync($"    {n,6}  {kind}");
                    }
                }
            }

            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }
}
