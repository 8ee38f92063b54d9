using System.CommandLine;
using System.Globalization;
using Audit.Api.Cli;
using Audit.Domain.Model;

namespace Audit.Api.Features.Replay;

public static class ReplayCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN") { Description = "the run (see `audit runs`)" };
        var policy = new Option<string>("--policy") { Description = $"the kernel to re-decide under, FLAVOUR/VERSION: {string.Join(", ", Policies.Flavours.Select(Policies.Name))} and any release {KernelVersion.Oldest}-{KernelVersion.Newest} (e.g. arm64/6.5, x86-vmx/6.12), or a proposal (arm64/6.17+memslot-flag); with --set, default: the run's own" };
        var set = new Option<string[]>("--set") { Description = $"what-if: edit an input for this replay only (repeatable): {WhatIf.Help}", AllowMultipleArgumentsPerToken = false };
        var save = new Option<string?>("--save") { Description = "also store the re-decided run as a what-if run with this id" };
        var json = new Option<bool>("--json") { Description = "print the POST /runs/{run}/replay body" };
        var cmd = new Command("replay", """
            re-decide a run under another kernel release and list the decisions that differ.
            With --set, first edit inputs (host capabilities, a VMA's flags or memory type, a memslot's
            flags) for this replay only; --save stores the edited run, each edited input noting the edit.
            Example: audit replay gh --policy arm64/5.14    (would 5.14 have mapped the BAR Device?)
                     audit replay gh --policy arm64/6.12
                     audit replay gh --set host.fwb=false --set 'vma[0xfffd00000000].flags-=VM_ALLOW_ANY_UNCACHED'
            """)
        {
            run, policy, set, save, json,
        };
        cmd.SetAction((parse, ct) => cli.QueryAsync(parse, json, m => m.Send(new ReplayRun(parse.GetValue(run)!, parse.GetValue(policy) ?? "", parse.GetValue(save), parse.GetValue(set) ?? []), ct), async v =>
        {
            foreach (var e in v.Edits)
            {
                await cli.Out.WriteLineAsync(e.Seqs.Count == 0
                    ? $"what-if {e.Edit}: changes no input (every one it targets already has that value)"
                    : $"what-if {e.Edit}: {string.Join(", ", e.Seqs.Select((q, i) => $"seq {q} (recorded {e.Recorded[i]})"))}");
            }

            var s = v.Summary;
            await cli.Out.WriteLineAsync($"{v.Run} recorded under {v.RecordedPolicy}, re-decided under {v.Policy}: {s.Differing} of {s.Decisions} decisions differ (faults {s.FaultsDiffering}/{s.Faults}, memslots {s.MemslotsDiffering}/{s.Memslots}, ioctls {s.IoctlsDiffering}/{s.Ioctls})");
            if (v.Differences.Count > 0)
            {
                await cli.Out.WriteLineAsync();
                Output.Table(cli.Out, ["SEQ", "WHAT", "BEFORE", "AFTER", "PARTS AT"], v.Differences.Select(d => (IReadOnlyList<string>)[
                    d.InputSeq.ToString(CultureInfo.InvariantCulture), d.What, Show(d.Before), Show(d.After), d.PartsAt ?? "-"]));
            }

            if (v.SavedAs is { } saved)
            {
                await cli.Out.WriteLineAsync($"saved as run {saved}: try `audit why {saved} GPA`");
            }
        }, ct));
        return cmd;
    }

    internal static string Show(DecisionView d) => d.MemType is { } t
        ? $"{t}{(d.Ipat == true ? "+IPAT" : "")} {Fmt.Size(d.Size ?? 0)} {d.Perms}"
        : d.Errno != 0 ? $"{d.Outcome} {Domain.Events.Errno.Format(d.Errno)}" : d.Outcome;
}
