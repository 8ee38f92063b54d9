using System.CommandLine;
using Audit.Api.Cli;
using Audit.Api.Features.Shared;
using Audit.Domain.Model;

namespace Audit.Api.Features.Why;

public static class WhyCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN") { Description = "the run (see `audit runs`)" };
        var gpa = new Argument<string>("GPA") { Description = "guest physical address, hex (0x40000200000) or decimal" };
        var at = new Option<string?>("--at") { Description = "a sequence number or an RFC 3339 time; the state after the last event at or before it (default: the end)" };
        var json = new Option<bool>("--json") { Description = "print the GET /runs/{run}/why body" };
        var cmd = new Command("why", """
            why a guest address is mapped as it is (memory type, permissions, block size) or not at all,
            with the ordered kernel rules that decided it and the events that set each fact.
            Example: audit why gh 0x40000200000
            """)
        {
            run, gpa, at, json,
        };
        cmd.SetAction((parse, ct) => cli.QueryAsync(parse, json, m => m.Send(new GetWhy(parse.GetValue(run)!, parse.GetValue(gpa)!, parse.GetValue(at)), ct), async v =>
        {
            await cli.Out.WriteLineAsync(v.Mapping is { } m
                ? $"{v.Run} {v.Gpa} at seq {v.At}: {m.MemType}{(m.Ipat == true ? "+IPAT" : "")} {Fmt.Size(m.Size)} {m.Perms} block {m.Gpa}, decided at seq {m.DecidedAt} under {m.Policy}"
                : $"{v.Run} {v.Gpa} at seq {v.At}: not mapped ({v.Outcome}){(v.LastChange is { } c ? $", by {c.Type} at seq {c.Seq}" : "")}");
            if (v.HostInferred is { } host)
            {
                await cli.Out.WriteLineAsync($"  host {host} (inferred): the trace described no host, so this decision stands on what ingest inferred (see its summary); ingest again with --policy if that is wrong");
            }

            foreach (var (step, i) in v.Explanation.Select((s, i) => (s, i + 1)))
            {
                await cli.Out.WriteLineAsync($"  {i}. {step.Text}");
                await cli.Out.WriteLineAsync($"     [{step.Rule}] {string.Join("; ", step.Facts.Select(f => $"{f.Name}={f.Value}{(f.Seq is { } s ? $" @{s}" : "")}"))}");
            }
        }, ct));
        return cmd;
    }
}
