using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.Runs;

public static class RunsCommand
{
    public static Command Build(CommandLine cli)
    {
        var json = new Option<bool>("--json") { Description = "print the GET /runs body" };
        var cmd = new Command("runs", "list runs with event counts, time span, host and policy") { json };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var runs = await mediator.Send(new ListRuns(), ct);
            if (parse.GetValue(json))
            {
                await cli.Out.WriteLineAsync(Output.ToJson(runs));
                return ExitCodes.Ok;
            }

            if (runs.Count == 0)
            {
                await cli.Out.WriteLineAsync("no runs yet: try `audit demo` or `audit ingest FILE`");
                return ExitCodes.Ok;
            }

            Output.Table(
                cli.Out,
                ["RUN", "EVENTS", "DERIVED", "FIRST", "LAST", "HOST", "POLICY"],
                runs.Select(r => (IReadOnlyList<string>)[
                    r.Run, r.Events.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    r.Derived.ToString(System.Globalization.CultureInfo.InvariantCulture), r.FirstTs ?? "-", r.LastTs ?? "-", r.Host ?? "-", r.Policy ?? "-"]));
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }
}
