using System.CommandLine;
using Audit.Api.Cli;
using Audit.Domain.Model;

namespace Audit.Api.Features.State;

public static class StateCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN") { Description = "the run (see `audit runs`)" };
        var at = new Option<string?>("--at") { Description = "a sequence number or an RFC 3339 time (default: the end)" };
        var gpa = new Option<string?>("--gpa") { Description = "only this gpa range: ADDR, START-END or START+SIZE" };
        var json = new Option<bool>("--json") { Description = "print the GET /runs/{run}/state body" };
        var cmd = new Command("state", """
            the stage-2 mappings, memslots, VMAs, memory attributes and guest_memfd shareability at a point,
            read from the temporal projections (an indexed query, not a replay).
            Example: audit state gh --at 20 --gpa 0x40000000+0x40000000
            """)
        {
            run, at, gpa, json,
        };
        cmd.SetAction((parse, ct) => cli.QueryAsync(parse, json, m => m.Send(new GetState(parse.GetValue(run)!, parse.GetValue(at), parse.GetValue(gpa)), ct), async v =>
        {
            await cli.Out.WriteLineAsync($"{v.Run} at seq {v.At}: {v.Stage2.Count} stage-2 entries, {v.Memslots.Count} memslots, {v.Vmas.Count} VMAs");
            await cli.Out.WriteLineAsync();
            Output.Table(cli.Out, ["GPA", "SIZE", "BLOCK", "TYPE", "PERMS", "DECIDED"], v.Stage2.Select(s => (IReadOnlyList<string>)[
                s.Gpa, Fmt.Size(s.Size), Fmt.Size(s.Granule), s.MemType + (s.Ipat == true ? "+IPAT" : ""), s.Perms, $"@{s.DecidedAt} {s.Policy}"]));
            await cli.Out.WriteLineAsync();
            Output.Table(cli.Out, ["SLOT", "GPA", "SIZE", "HVA", "FLAGS", "SINCE"], v.Memslots.Select(s => (IReadOnlyList<string>)[
                $"{s.AsId}:{s.Slot}", s.Gpa, Fmt.Size(s.Size), s.Hva, s.Flags + (s.GuestMemfd is { } fd ? $" gmem fd {fd}" : ""), $"@{s.Since}"]));
            if (v.Attributes.Count + v.Shareability.Count > 0)
            {
                await cli.Out.WriteLineAsync();
                foreach (var a in v.Attributes)
                {
                    await cli.Out.WriteLineAsync($"attributes {a.Gpa} +{Fmt.Size(a.Size)}: {(a.Private ? "private" : "shared")} since @{a.Since}");
                }

                foreach (var s in v.Shareability)
                {
                    await cli.Out.WriteLineAsync($"guest_memfd fd {s.Fd} {s.Offset} +{Fmt.Size(s.Size)}: {(s.Shared ? "shared" : "private")} since @{s.Since}");
                }
            }
        }, ct));
        return cmd;
    }
}
