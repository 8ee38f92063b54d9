using System.CommandLine;
using System.Globalization;
using Audit.Api.Cli;

namespace Audit.Api.Features.Bench;

/// <summary>`audit bench`: measured figures against goals, printed side by side.</summary>
public static class BenchCommand
{
    public static Command Build(CommandLine cli)
    {
        var engineOnly = new Option<bool>("--engine") { Description = "measure only the decision engine (no database)" };
        var events = new Option<long>("--events") { Description = "synthetic events to generate", DefaultValueFactory = _ => 1_000_000 };
        var json = new Option<bool>("--json") { Description = "print the figures as JSON" };
        var cmd = new Command("bench", "benchmarks on synthetic runs; exits 1 when a goal is missed") { engineOnly, events, json };
        cmd.SetAction(async (parse, ct) =>
        {
            await cli.Err.WriteLineAsync($"engine: deciding {parse.GetValue(events):N0} synthetic events on one thread...");
            var r = EngineBench.Run(parse.GetValue(events));
            const double goal = 1_000_000;
            if (parse.GetValue(json))
            {
                await cli.Out.WriteLineAsync(Output.ToJson(new { engineFaultsPerSec = Math.Round(r.FaultsPerSec), engineEventsPerSec = Math.Round(r.EventsPerSec), engineFaultsPerSecMin = Math.Round(r.MinFaultsPerSec), engineFaultsPerSecMax = Math.Round(r.MaxFaultsPerSec), events = r.Events, faults = r.Faults, derived = r.Derived, seconds = r.Seconds }));
            }
            else
            {
                Output.Table(cli.Out, ["FIGURE", "GOAL", "MEASURED", "RATIO"], [
                    ["engineFaultsPerSec", ">= 1,000,000", r.FaultsPerSec.ToString("N0", CultureInfo.InvariantCulture), (r.FaultsPerSec / goal).ToString("0.00", CultureInfo.InvariantCulture)],
                    ["engineEventsPerSec", "-", r.EventsPerSec.ToString("N0", CultureInfo.InvariantCulture), "-"],
                ]);
                await cli.Out.WriteLineAsync($"({r.Events:N0} events, {r.Faults:N0} faults, {r.Derived:N0} derived; median of 3 passes {r.Seconds:0.00} s, range {r.MinFaultsPerSec:N0} - {r.MaxFaultsPerSec:N0} faults/s)");
            }

            return r.FaultsPerSec >= goal ? ExitCodes.Ok : ExitCodes.NotFound;
        });
        return cmd;
    }
}
