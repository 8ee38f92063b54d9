using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.Bisect;

public static class BisectCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN") { Description = "the run (see `audit runs`)" };
        var from = new Option<string?>("--from") { Description = "the oldest kernel to consider, e.g. 5.14 (default: the oldest modelled, 5.10)" };
        var to = new Option<string?>("--to") { Description = "the newest kernel to consider, e.g. 6.12 (default: the newest modelled, 6.18)" };
        var gpa = new Option<string?>("--gpa") { Description = "only guest addresses in this range: GPA, START-END or START+SIZE" };
        var json = new Option<bool>("--json") { Description = "print the GET /runs/{run}/bisect body" };
        var cmd = new Command("bisect", """
            re-decide a run under every kernel release of its flavour where a rule changes (in memory,
            nothing stored), and show each guest range, memslot or guest_memfd call whose decision
            differs: the decision over each span of releases and, at each change, the release and the
            rules responsible.
            Example: audit bisect gh --gpa 0x10000000+0x1000000     (the BAR only)
            Example: audit bisect gh --from 5.14 --to 6.12 --json
            """)
        {
            run, from, to, gpa, json,
        };
        cmd.SetAction((parse, ct) => cli.QueryAsync(parse, json, m => m.Send(new BisectRun(parse.GetValue(run)!, parse.GetValue(from), parse.GetValue(to), parse.GetValue(gpa), Progress), ct), async v =>
        {
            await cli.Out.WriteLineAsync($"{v.Run} ({v.Flavour}, recorded under {v.RecordedPolicy}): {v.Rows.Count} decision(s) differ across {string.Join(", ", v.Releases.Select(r => Span(r.From, r.To)))}");
            foreach (var row in v.Rows)
            {
                await cli.Out.WriteLineAsync();
                await cli.Out.WriteLineAsync($"{row.What}: {Story(row)}");
                foreach (var c in row.Changes)
                {
                    await cli.Out.WriteLineAsync($"  {c.At}: {c.Before} -> {c.After} [{string.Join(", ", c.Rules)}]");
                }

                // A block faulted thousands of times is one row; --json lists every seq.
                const int Shown = 10;
                var more = row.Seqs.Count > Shown ? $" (+{row.Seqs.Count - Shown} more)" : "";
                await cli.Out.WriteLineAsync($"  inputs: {string.Join(", ", row.Seqs.Take(Shown).Select(s => "seq " + s))}{more}");
            }
        }, ct));
        return cmd;

        void Progress(string line)
        {
            cli.Err.WriteLine(line);
        }
    }

    /// <summary>`Device 2M rw- (5.14-6.8) -> NormalNC 2M rw- from 6.9`.</summary>
    internal static string Story(BisectRow row) => string.Join(" -> ", row.Spans.Select((s, i) =>
        i == row.Spans.Count - 1 && i > 0 ? $"{s.Decision} from {s.From}" : $"{s.Decision} ({Span(s.From, s.To)})"));

    private static string Span(string from, string to) => from == to ? from : $"{from}-{to}";
}
