using System.CommandLine;
using Audit.Api.Cli;
using Audit.Api.Features.Replay;

namespace Audit.Api.Features.Diff;

public static class DiffCommand
{
    public static Command Build(CommandLine cli)
    {
        var a = new Argument<string>("RUN_A");
        var b = new Argument<string>("RUN_B");
        var json = new Option<bool>("--json") { Description = "print the GET /diff body" };
        var cmd = new Command("diff", """
            compare two runs of the same workload: faults are aligned per guest page and memslot changes per
            slot, in order; prints the first divergence, every difference, and the inputs that differ
            (host capabilities, policy, VMA flags and memory types, memslot flags).
            Example: audit diff gh gh-on-5.14
            """)
        {
            a, b, json,
        };
        cmd.SetAction((parse, ct) => cli.QueryAsync(parse, json, m => m.Send(new DiffRuns(parse.GetValue(a)!, parse.GetValue(b)!), ct), async v =>
        {
            await cli.Out.WriteLineAsync($"{v.A} ({v.PolicyA}) vs {v.B} ({v.PolicyB}): {v.Differing} of {v.Compared} aligned decisions differ");
            if (v.First is { } f)
            {
                await cli.Out.WriteLineAsync($"first divergence: {f.Key} (#{f.Nth}): {Side(f.A)} vs {Side(f.B)}{(f.PartsAt is { } p ? $", parting at {p}" : "")}");
            }

            if (v.Differences.Count > 0)
            {
                await cli.Out.WriteLineAsync();
                Output.Table(cli.Out, ["WHERE", "#", v.A, v.B, "PARTS AT"], v.Differences.Select(d => (IReadOnlyList<string>)[
                    d.Key, d.Nth.ToString(System.Globalization.CultureInfo.InvariantCulture), Side(d.A), Side(d.B), d.PartsAt ?? "-"]));
            }

            if (v.Inputs.Count > 0)
            {
                await cli.Out.WriteLineAsync();
                await cli.Out.WriteLineAsync("inputs that differ:");
                foreach (var i in v.Inputs)
                {
                    await cli.Out.WriteLineAsync($"  {i.What}: {i.A ?? "(absent)"} | {i.B ?? "(absent)"}");
                }
            }
        }, ct));
        return cmd;

        static string Side(DiffSide? s) => s is null ? "(none)" : $"{ReplayCommand.Show(s.Decision)} @{s.Seq}";
    }
}
