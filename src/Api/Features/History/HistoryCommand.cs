using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.History;

public static class HistoryCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN") { Description = "the run (see `audit runs`)" };
        var gpa = new Argument<string>("GPA") { Description = "guest physical address, hex or decimal" };
        var json = new Option<bool>("--json") { Description = "print the GET /runs/{run}/history body" };
        var cmd = new Command("history", """
            every event that changed a guest address's mapping, memslot, backing VMA or shareability, in order.
            Example: audit history gh 0x10000040
            """)
        {
            run, gpa, json,
        };
        cmd.SetAction((parse, ct) => cli.QueryAsync(parse, json, m => m.Send(new GetHistory(parse.GetValue(run)!, parse.GetValue(gpa)!), ct), async v =>
        {
            Output.Table(cli.Out, ["SEQ", "EVENT", "FROM", "WHAT", "CHANGE"], v.Changes.Select(c => (IReadOnlyList<string>)[
                c.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), c.Type, c.Input is { } i ? $"{i.Type} @{i.Seq}" : "-", c.Projection, c.Change]));
        }, ct));
        return cmd;
    }
}
