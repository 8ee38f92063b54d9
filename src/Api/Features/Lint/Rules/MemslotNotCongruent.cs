using Audit.Domain.Events;
using Audit.Domain.Memslots;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// A memslot whose gpa and hva differ modulo 2M (or 1G) can never get block mappings there:
/// fault_supports_stage2_huge_mapping (arm64) and the x86 lpage alignment both need the two
/// congruent, so every fault maps 4K even on hugetlb or THP backing.
/// </summary>
public sealed class MemslotNotCongruent : LintRule
{
    private const ulong M2 = 0x200000, G1 = 0x40000000;

    public override LintRuleInfo Info { get; } = new(
        "memslot-not-congruent", Severity.Warning,
        "Memslot gpa and hva not congruent at 2M/1G: huge pages lost",
        "The memslot's guest and host addresses differ modulo the block size its backing could use (2M for THP, hugetlb or PFNMAP; 1G for 1G hugetlb or PFNMAP), so KVM maps every page of it with 4K entries.",
        "Align the VMM's mmap so that hva and gpa are equal modulo 1G (mmap a larger area and align inside it).");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not MemslotSet m || step.Decision is not MemslotDecided { PredictedErrno: 0, Change: SlotChange.Create or SlotChange.Move } || m.Size < M2)
        {
            return;
        }

        var vmas = VmasUnder(before, m).ToList();
        var largest = vmas.Select(HostBlocks.LargestBlock).DefaultIfEmpty(0UL).Max();
        foreach (var size in new[] { G1, M2 }.Where(s => s <= largest && s <= m.Size))
        {
            if (!HostBlocks.Congruent(m.Gpa.Value, m.Hva.Value, size))
            {
                Report($"slot {m.Slot}: gpa {m.Gpa} and hva {m.Hva} differ modulo {Fmt.Size(size)}, so no {Fmt.Size(size)} block can map it", [step.Seq, .. vmas.Select(v => v.Seq)]);
                return;
            }
        }
    }

}
