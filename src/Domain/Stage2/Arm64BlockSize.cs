using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Domain.Stage2.HostMapping;
using Ctx = Audit.Domain.Stage2.Arm64FaultContext;

namespace Audit.Domain.Stage2;

/// <summary>The block size rules of user_mem_abort: the VMA's page shift, what the memslot can hold, and THP.</summary>
internal static class Arm64BlockSize
{
    private const ulong P64K = 64UL << 10, P32M = 32UL << 20;

    /// <summary>Before 5.14: the hugetlb page size, else PAGE_SIZE; VM_PFNMAP forces pages.</summary>
    public static FaultResolved? VmaShiftBefore514(Ctx c)
    {
        if (c.ForcePte)
        {
            return null;
        }

        var vma = c.Vma;
        if ((vma.Flags & VmaFlags.VM_PFNMAP) != 0)
        {
            c.Size = P4K;
            c.ForcePte = true;
            c.Why.Add(Rules.Arm64VmaShift, "VM_PFNMAP before 5.14: always 4K pages (force_pte)", Facts.VmaFlags(vma), Facts.Policy(c.S));
            return null;
        }

        c.Size = HugetlbSize(vma) ?? P4K;
        c.Why.Add(Rules.Arm64VmaShift, c.Size > P4K ? $"hugetlb VMA: the host page size {Fmt.Size(c.Size)} bounds the block" : "not hugetlb: PAGE_SIZE", Facts.Vma(vma));
        return null;
    }

    // Most faults land in a VMA already faulted in: the same step, cited again (StepMemo).
    private static readonly StepMemo VmaPageShiftMemo = new(), ThpMemo = new(), HugeMappingMemo = new();

    /// <summary>5.14+: hugetlb page size; PFNMAP blocks where hva and pa are congruent and the block stays in the VMA.</summary>
    public static FaultResolved? GetVmaPageShift(Ctx c)
    {
        if (c.ForcePte)
        {
            return null;
        }

        var vma = c.Vma;
        var pfnmap = (vma.Flags & VmaFlags.VM_PFNMAP) != 0;
        if (!pfnmap)
        {
            c.Size = HugetlbSize(vma) ?? P4K;
            c.Why.Add(VmaPageShiftMemo, Rules.Arm64VmaPageShift, c.Size > P4K
                ? Fmt.Cached("shift.hugetlb", c.Size, static k => $"hugetlb VMA: the host page size {Fmt.Size(k)} bounds the block")
                : "not VM_PFNMAP and not hugetlb: PAGE_SIZE", Facts.Vma(vma), vma.HostPageSizeFact(c.Size));
            return null;
        }

        // The kernel's "pa" is vm_pgoff << PAGE_SHIFT plus the offset into the VMA.
        var pa = (vma.PgOff << 12) + (c.Hva.Value - vma.Start);
        c.Size = P4K;
        foreach (var size in new[] { P1G, P2M })
        {
            var congruent = Memslots.HostBlocks.Congruent(c.Hva.Value, pa, size);
            var inside = (c.Hva.Value & ~(size - 1)) >= vma.Start && Arm64Fault.AlignUp(c.Hva.Value, size) <= vma.End;
            if (congruent && inside)
            {
                c.Size = size;
                break;
            }
        }

        c.Why.Add(Rules.Arm64VmaPageShift, c.Size == P4K
            ? "VM_PFNMAP whose hva and pa are not congruent at 2M (or the block leaves the VMA): 4K"
            : Fmt.Cached("shift.pfnmap", c.Size, static k => $"VM_PFNMAP with hva and pa congruent modulo {Fmt.Size(k)} and the block inside the VMA: {Fmt.Size(k)}"),
            Facts.VmaFlags(vma), new Fact("vma.pgoff", Fmt.Hex(vma.PgOff), vma.Seq), new Fact("hva", c.Hva.ToString(), c.Slot.Seq));
        return null;
    }

    /// <summary>The kernel's switch over the shift: PUD -> PMD -> PAGE, falling through when the memslot cannot hold the block.</summary>
    public static FaultResolved? FaultSupportsStage2HugeMapping(Ctx c)
    {
        if (c.ForcePte || c.Size == P4K)
        {
            return null;
        }

        var slotFact = c.SlotFact;
        if (c.Size >= P1G)
        {
            if (c.Size == P1G && SupportsHuge(c.Slot, c.Hva, P1G))
            {
                c.Why.Add(HugeMappingMemo, Rules.Arm64HugeMapping, "the memslot's gpa and hva are congruent at 1G and the block lies inside it: 1G", slotFact);
                return null;
            }

            c.Why.Add(HugeMappingMemo, Rules.Arm64HugeMapping, "the memslot cannot hold a 1G block here: try 2M", slotFact);
            c.Size = P2M;
        }

        if (c.Size == P32M)
        {
            c.Why.Add(HugeMappingMemo, Rules.Arm64HugeMapping, "contiguous-PMD hugetlb (32M): mapped with 2M blocks", c.VmaFact);
            c.Size = P2M;
        }

        if (c.Size == P2M)
        {
            if (SupportsHuge(c.Slot, c.Hva, P2M))
            {
                c.Why.Add(HugeMappingMemo, Rules.Arm64HugeMapping, "the memslot's gpa and hva are congruent at 2M and the block lies inside it: 2M", slotFact);
                return null;
            }

            c.Why.Add(HugeMappingMemo, Rules.Arm64HugeMapping, "the memslot cannot hold a 2M block here: 4K, forced (no later THP upgrade)", slotFact);
            c.Size = P4K;
            c.ForcePte = true;
            return null;
        }

        c.Why.Add(HugeMappingMemo, Rules.Arm64HugeMapping, c.Size == P64K ? "contiguous-PTE hugetlb (64K): mapped with 4K pages, forced" : $"{Fmt.Size(c.Size)} host pages: mapped with 4K pages, forced", c.VmaFact);
        c.Size = P4K;
        c.ForcePte = true;
        return null;
    }

    /// <summary>
    /// transparent_hugepage_adjust: a 4K fault that is not forced to pages nor non-cacheable becomes a 2M
    /// block when the host maps the page with a huge page (get_user_mapping_size reads the host page
    /// table) and the memslot can hold the block. A permission fault on a block keeps the block's size.
    /// </summary>
    public static FaultResolved? TransparentHugepageAdjust(Ctx c)
    {
        if (c.Size != P4K || c.ForcePte || c.Device)
        {
            return null;
        }

        if (c.IsPermission && c.F.Granule is { } g && g > P4K)
        {
            c.Size = g;
            return null;
        }

        if (!ThpBacked(c.S, c.Vma, c.Hva, out var splitBy))
        {
            if (splitBy is not null)
            {
                c.Why.Add(Rules.Arm64Thp, "the host's transparent huge page here was split (partial munmap, mprotect or madvise): the host maps 4K, so 4K", splitBy, c.VmaFact);
            }

            return null;
        }

        if (SupportsHuge(c.Slot, c.Hva, P2M))
        {
            c.Size = P2M;
            c.Why.Add(ThpMemo, Rules.Arm64Thp, "the host backs this page with a transparent huge page: promoted to a 2M block", c.VmaFact, c.Vma.ThpFact);
        }
        else
        {
            c.Why.Add(ThpMemo, Rules.Arm64Thp, "transparent huge page, but the memslot cannot hold a 2M block here: stays 4K", c.VmaFact, c.SlotFact);
        }

        return null;
    }

    /// <summary>fault_supports_stage2_huge_mapping: gpa and hva congruent modulo size, block inside the memslot.</summary>
    internal static bool SupportsHuge(MemslotState slot, Hva hva, ulong size)
    {
        var uaddrStart = slot.Hva.Value;
        var uaddrEnd = uaddrStart + slot.Size;
        if (!Memslots.HostBlocks.Congruent(slot.Gpa.Value, uaddrStart, size))
        {
            return false;
        }

        return hva.Value >= Arm64Fault.AlignUp(uaddrStart, size) && hva.Value < (uaddrEnd & ~(size - 1));
    }

    private static ulong? HugetlbSize(VmaState vma)
    {
        var hugetlb = (vma.Flags & VmaFlags.VM_HUGETLB) != 0 || vma.Backing.Kind == BackingKind.Hugetlb;
        return hugetlb ? (vma.Backing.HostPageSize is { } hps and > P4K ? hps : P2M) : null;
    }
}
