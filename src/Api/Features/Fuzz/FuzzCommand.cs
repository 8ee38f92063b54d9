using System.CommandLine;
using System.Globalization;
using Audit.Api.Cli;
using Audit.Api.Composition;

namespace Audit.Api.Features.Fuzz;

/// <summary>The `bench --fuzz N` report: counts by answer, and the first failures when there are any.</summary>
public static class FuzzCommand
{
    public static async Task<int> RunAsync(CommandLine cli, ParseResult parse, int count, bool json, CancellationToken ct)
    {
        if (count < 1)
        {
            await cli.Err.WriteLineAsync("audit: --fuzz takes a positive number of imports, e.g. --fuzz 10000");
            return ExitCodes.BadInput;
        }

        var (cs, _) = await Database.ResolveAsync(parse.GetValue(CommandLine.Db), cli.Err, ct);
        var r = await FuzzBench.RunAsync(cs, count, seed: 21, m => cli.Err.WriteLine(m), ct);
        var f = r.Report;
        var figures = new Dictionary<string, object>
        {
            ["imports"] = f.Imports,
            ["stored"] = f.Stored,
            ["refused"] = f.Refused,
            ["serverErrors"] = f.ServerErrors,
            ["refusedWithoutLine"] = f.RefusedWithoutLine,
            ["otherStatus"] = f.OtherStatus,
            ["partialRuns"] = f.PartialRuns + r.StoreProblems.Count,
            ["runsChecked"] = r.RunsChecked,
            ["seconds"] = Math.Round(r.Seconds, 1),
        };
        if (json)
        {
            await cli.Out.WriteLineAsync(Output.ToJson(figures));
        }
        else
        {
            Output.Table(cli.Out, ["FIGURE", "COUNT"], figures.Select(kv => (IReadOnlyList<string>)[kv.Key, Convert.ToString(kv.Value, CultureInfo.InvariantCulture)!]));
            foreach (var failure in f.Failures.Concat(r.StoreProblems.Take(10).Select(p => $"{p.Run}: {p.Check}: {p.Detail}")))
            {
                await cli.Out.WriteLineAsync("  " + failure);
            }
        }

        return f.Clean && r.StoreProblems.Count == 0 ? ExitCodes.Ok : ExitCodes.NotFound;
    }
}
