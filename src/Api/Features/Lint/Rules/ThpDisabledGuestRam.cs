using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// Guest RAM on anonymous or shmem memory with transparent huge pages off: the host maps 4K pages,
/// so transparent_hugepage_adjust (arm64) / the host mapping level (x86) never yields 2M blocks.
/// </summary>
public sealed class ThpDisabledGuestRam : LintRule
{
    private const ulong M2 = 0x200000;
    private readonly HashSet<long> _reported = [];

    public override LintRuleInfo Info { get; } = new(
        "thp-disabled-guest-ram", Severity.Warning,
        "Transparent huge pages off on guest RAM",
        "A memslot maps anonymous or shmem memory whose VMA has no transparent huge pages (backing.thp false, 4K host pages), so the stage-2 table holds only 4K entries for it: more TLB misses and page-table memory.",
        "Enable THP for the VMM (transparent_hugepage=madvise plus MADV_HUGEPAGE on guest RAM) or back guest RAM with hugetlbfs.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not MemslotSet m || step.Decision is not MemslotDecided { PredictedErrno: 0, Change: SlotChange.Create } || m.Size < M2)
        {
            return;
        }

        foreach (var vma in VmasUnder(before, m).Where(v => NoThp(v) && v.End - v.Start >= M2 && _reported.Add(v.Seq)))
        {
            Report($"slot {m.Slot} maps {vma.Text} with THP off: 4K pages only", [step.Seq, vma.Seq]);
        }
    }

    private static bool NoThp(VmaState v) =>
        v.Backing.Kind is BackingKind.Anon or BackingKind.Shmem && v.Backing.Thp == false && (v.Backing.HostPageSize ?? 4096) < M2;
}
