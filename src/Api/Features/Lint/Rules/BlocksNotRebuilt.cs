using Audit.Domain.Events;
using Audit.Domain.Memslots;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// arm64 leaves the 4K mappings dirty logging made (force_pte, or blocks split on enabling it) in place
/// after logging stops: nothing collapses them back (x86 zaps collapsible SPTEs, arm64 does not), so
/// the range stays 4K until it is unmapped and faulted again.
/// </summary>
public sealed class BlocksNotRebuilt : LintRule
{
    private const ulong M2 = 0x200000;

    // Slots whose logging was switched off: (as, slot) -> the seqs of logging on and off.
    private readonly Dictionary<(int, int), (long On, long Off)> _stopped = [];
    private readonly Dictionary<(int, int), long> _logging = [];

    public override LintRuleInfo Info { get; } = new(
        "blocks-not-rebuilt", Severity.Warning,
        "Blocks broken by dirty logging never rebuilt",
        "On arm64 dirty logging maps memory with 4K pages; when logging stops KVM does not collapse them back, so ranges that could be 2M/1G blocks stay 4K until unmapped and faulted again.",
        "After stopping dirty logging, drop the split mappings so they fault back as blocks (e.g. delete and re-create the memslot, or MADV_DONTNEED/re-fault), or avoid toggling logging on long-lived guests.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not MemslotSet m || step.Decision is not MemslotDecided { PredictedErrno: 0 } || before.Arch != Arch.Arm64)
        {
            return;
        }

        var key = (m.AsId, m.Slot);
        var logs = MemslotState.IsLogging(m.Flags);
        if (logs && !_logging.ContainsKey(key))
        {
            _logging[key] = step.Seq;
        }
        else if (!logs && _logging.Remove(key, out var on))
        {
            _stopped[key] = (on, step.Seq);
        }
    }

    public override void Finish(RunState end)
    {
        foreach (var (key, (on, off)) in _stopped)
        {
            if (!end.Slots.TryGetValue(key, out var slot) || slot.LogDirty)
            {
                continue;
            }

            // 4K entries faulted in while logging was on, or blocks that enabling it split (one entry, 4K granule),
            // where the backing could use blocks.
            var left = end.Stage2.Overlapping(slot.Gpa.Value, slot.End)
                .Where(e => e.Value.Granule < M2 && e.Value.DecidedSeq < off && (e.Value.DecidedSeq >= on || e.Size >= M2) && BlocksPossible(end, slot, e.Start))
                .ToList();
            if (left.Count > 0)
            {
                var bytes = left.Aggregate(0UL, (sum, e) => sum + e.Size);
                Report($"slot {slot.Slot}: {Fmt.Size(bytes)} still mapped with 4K pages from dirty logging (on at seq {on}, off at seq {off})", [on, off, .. left.Select(e => e.Value.DecidedSeq).Take(20)]);
            }
        }
    }

    private static bool BlocksPossible(RunState s, MemslotState slot, ulong gpa) =>
        s.VmaAt(slot.HvaOf(new Domain.Addresses.Gpa(gpa))) is { } v && HostBlocks.LargestBlock(v) >= M2;
}
