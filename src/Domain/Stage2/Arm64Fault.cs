using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>
/// arm64 stage-2 faults: kvm_handle_guest_abort and user_mem_abort (arch/arm64/kvm/mmu.c),
/// domain.md section 3, plus gmem_abort (section 5). Rules run in the kernel's order; the first
/// that ends the decision wins, and every rule evaluated is recorded with the facts it read.
/// </summary>
internal static class Arm64Fault
{
    private const string ReadNoW = "read fault on ordinary memory: mapped without W unless the host page was already writable-mapped (the trace does not say), so the first guest write takes a permission fault";
    private const string ExecNoW = "exec fault on ordinary memory: mapped without W unless the host page was already writable-mapped (the trace does not say), so the first guest write takes a permission fault";
    private const ulong P4K = 4096, P2M = 2UL << 20, P1G = 1UL << 30, P64K = 64UL << 10, P32M = 32UL << 20;

    public static FaultResolved Decide(RunState s, GuestFaulted f, long seq)
    {
        var why = new Why();
        var fault = Facts.Fault(f, seq);
        var write = f.Access == Access.Write;
        var exec = f.Access == Access.Exec;

        // 0. IPA beyond what the VM (or the host's PARange) can address.
        var ipaBits = s.Vm?.IpaBits ?? 40;
        var paRange = Math.Max(48, ipaBits);
        if (paRange < 64 && f.Gpa.Value >= 1UL << paRange)
        {
            why.Add(Rules.Arm64IpaRange, $"IPA {f.Gpa} is beyond the host's {paRange}-bit PARange: an address size fault is injected", fault);
            return Done(s, seq, exec ? FaultOutcome.InjectIabt : FaultOutcome.InjectDabt, 0, null, why);
        }

        if (ipaBits < 64 && f.Gpa.Value >= 1UL << ipaBits)
        {
            why.Add(Rules.Arm64IpaRange, $"IPA {f.Gpa} is beyond the VM's {ipaBits}-bit IPA space: an external abort is injected", fault, new Fact("vm.ipaBits", ipaBits.ToString(System.Globalization.CultureInfo.InvariantCulture), s.VmSeq));
            return Done(s, seq, exec ? FaultOutcome.InjectIabt : FaultOutcome.InjectDabt, 0, null, why);
        }

        // 1. No memslot, or a write to a read-only one: io_mem_abort territory.
        var slot = s.SlotAt(f.Gpa);
        if (slot is null || (write && slot.ReadOnly))
        {
            var where = slot is null ? "no memslot covers it" : "the memslot is KVM_MEM_READONLY";
            Fact[] facts = slot is null ? [fault] : [fault, Facts.Slot(slot), Facts.SlotFlags(slot)];
            if (exec)
            {
                why.Add(Rules.Arm64NoMemslot, $"instruction fetch and {where}: an instruction abort is injected", facts);
                return Done(s, seq, FaultOutcome.InjectIabt, 0, null, why);
            }

            if (f.S1ptw)
            {
                why.Add(Rules.Arm64NoMemslot, $"stage-1 page-table walk and {where}: a data abort is injected", facts);
                return Done(s, seq, FaultOutcome.InjectDabt, 0, null, why);
            }

            if (f.Cm && slot is null)
            {
                why.Add(Rules.Arm64NoMemslot, "cache maintenance outside any memslot: the instruction is skipped", facts);
                return Done(s, seq, FaultOutcome.Skipped, 0, null, why);
            }

            why.Add(Rules.Arm64NoMemslot, $"{where}: the access exits to the VMM as MMIO (KVM_EXIT_MMIO)", facts);
            return Done(s, seq, FaultOutcome.MmioExit, 0, null, why);
        }

        var slotFact = Facts.Slot(slot);

        // 2. Access flag: only mark young.
        if (f.Kind == FaultKind.AccessFlag)
        {
            var existing = s.Stage2.TryFind(f.Gpa.Value, out var e) ? e : default;
            why.Add(Rules.Arm64AccessFlag, "access-flag fault: the entry is marked young, its attributes do not change", fault, slotFact);
            Mapping? m = existing.Value is { } v ? new Mapping(f.Gpa.AlignDown(v.Granule), v.Granule, v.MemType, null, v.Perms) : null;
            return Done(s, seq, FaultOutcome.Young, 0, m, why);
        }

        // 3. (6.18+) guest_memfd-backed memslot.
        if (s.Policy.GmemAbort && slot.HasGmem)
        {
            return GmemAbort(s, f, seq, slot, why, fault);
        }

        // 4. A permission fault that is neither a write nor an exec cannot happen.
        if (f.Kind == FaultKind.Permission && !write && !exec)
        {
            why.Add(Rules.Arm64PermNotWriteExec, "permission fault on a read: unexpected, the vCPU gets -EFAULT", fault);
            return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
        }

        // 5. The VMA behind the hva.
        var hva = slot.HvaOf(f.Gpa);
        var vma = s.VmaAt(hva);
        if (vma is null)
        {
            why.Add(Rules.Arm64NoVma, $"no VMA at hva {hva}: -EFAULT", fault, slotFact, new Fact("hva", hva.ToString(), slot.Seq));
            return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
        }

        var vmaFact = Facts.Vma(vma);

        // 6. Block size.
        var (size, forcePte) = BlockSize(s, slot, vma, hva, why, vmaFact);

        // 7. hwpoison.
        if (s.Poisoned.TryFind(hva.Value, out var poison))
        {
            why.Add(Rules.Arm64Hwpoison, $"the host page at {hva} is hardware-poisoned: SIGBUS to the VMM", fault, new Fact("madvise", "MADV_HWPOISON", poison.Value));
            return Done(s, seq, FaultOutcome.Sigbus, 0, null, why);
        }

        // 8. Cacheability.
        var (forceNc, refuse) = Cacheability(s, vma, why, vmaFact);
        if (refuse)
        {
            return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
        }

        var allowAnyUc = (vma.Flags & VmaFlags.VM_ALLOW_ANY_UNCACHED) != 0 && s.Policy.Cacheability >= Arm64Cacheability.AllowAnyUncached;

        // THP promotion happens at map time, for 4 KiB faults that are not forced.
        if (size == P4K && !forcePte && !forceNc && vma.Backing.Thp == true)
        {
            if (SupportsHuge(slot, hva, P2M))
            {
                why.Add(Rules.Arm64Thp, "the host backs this page with a transparent huge page: promoted to a 2M block", vmaFact, new Fact("vma.backing.thp", "true", vma.Seq));
                size = P2M;
            }
            else
            {
                why.Add(Rules.Arm64Thp, "transparent huge page, but the memslot cannot hold a 2M block here: stays 4K", vmaFact, slotFact);
            }
        }

        // 12 (first half). Host pte writability.
        var pfnmap = vma.IsPfnOrMixedMap;
        bool writable;
        if (write)
        {
            var vmaWritable = (vma.Prot & Perms.W) != 0 && (!pfnmap || (vma.Flags & VmaFlags.VM_SHARED) != 0);
            if (!vmaWritable)
            {
                why.Add(Rules.Arm64HostWritable, pfnmap && (vma.Prot & Perms.W) != 0
                    ? "write fault on a MAP_PRIVATE PFNMAP: its ptes are read-only, the pfn lookup fails with -EFAULT"
                    : "write fault on a VMA without write permission: -EFAULT", fault, vmaFact, Facts.VmaProt(vma), Facts.VmaFlags(vma));
                return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
            }

            writable = true;
            why.Add(Rules.Arm64HostWritable, "write fault: the host page is pinned writable", fault, Facts.VmaProt(vma));
        }
        else if (pfnmap)
        {
            writable = (vma.Prot & Perms.W) != 0 && (vma.Flags & VmaFlags.VM_SHARED) != 0;
            why.Add(Rules.Arm64HostWritable, writable
                ? "PFNMAP/MIXEDMAP: a shared writable mapping has writable ptes"
                : "PFNMAP/MIXEDMAP without a shared writable mapping: read-only ptes", Facts.VmaProt(vma), Facts.VmaFlags(vma));
        }
        else
        {
            writable = false;
            why.Add(Rules.Arm64HostWritable, exec ? ExecNoW : ReadNoW, fault);
        }

        if (slot.ReadOnly)
        {
            writable = false;
        }

        // 9. Dirty logging maps read faults read-only.
        if (slot.LogDirty && !write)
        {
            var exempt = s.Policy.DirtyLogExemptsDevice && pfnmap && !vma.LinearMap;
            if (!exempt)
            {
                writable = false;
                why.Add(Rules.Arm64DirtyLogReadOnly, "dirty logging is on and this is not a write: mapped read-only so the first write is logged", Facts.SlotFlags(slot));
            }
            else
            {
                why.Add(Rules.Arm64DirtyLogReadOnly, "dirty logging is on, but device PFNMAP/MIXEDMAP memory is not logged (6.17+): writability kept", Facts.SlotFlags(slot), Facts.VmaFlags(vma));
            }
        }

        // 10. No execution from non-cacheable memory.
        if (exec && forceNc)
        {
            why.Add(Rules.Arm64ExecNonCacheable, "instruction fetch from memory forced non-cacheable: -ENOEXEC, an instruction abort is injected", fault, Facts.VmaFlags(vma), Facts.VmaMemType(vma));
            return Done(s, seq, FaultOutcome.InjectIabt, Errno.ENOEXEC, null, why);
        }

        // 11. MTE.
        if (s.MteEnabled && !forceNc && f.Kind != FaultKind.Permission)
        {
            var mteFact = new Fact("vm.cap", "KVM_CAP_ARM_MTE", s.MteSeq);
            if ((vma.Flags & VmaFlags.VM_MTE_ALLOWED) == 0)
            {
                why.Add(Rules.Arm64Mte, "MTE is enabled for the VM and the VMA lacks VM_MTE_ALLOWED: -EFAULT", mteFact, Facts.VmaFlags(vma));
                return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
            }

            why.Add(Rules.Arm64Mte, "MTE is enabled: the page's tags are sanitised before mapping", mteFact, Facts.VmaFlags(vma));
        }

        // 12. Permissions and memory type.
        var perms = Perms.R | (writable ? Perms.W : 0) | (exec ? Perms.X : 0);
        var dic = s.Host?.Caps.CacheDic == true;
        Stage2MemType memType;
        if (forceNc)
        {
            memType = allowAnyUc ? Stage2MemType.NormalNC : Stage2MemType.Device;
            why.Add(Rules.Arm64Prot, Fmt.Cached("prot.noncacheable", (allowAnyUc, perms), static k => k.allowAnyUc
                ? $"forced non-cacheable in a VM_ALLOW_ANY_UNCACHED VMA: Normal-NC, {Fmt.Perms(k.perms)}"
                : $"forced non-cacheable: Device-nGnRE, {Fmt.Perms(k.perms)}"), Facts.VmaFlags(vma), Facts.Policy(s));
        }
        else
        {
            memType = Stage2MemType.Normal;
            if (dic)
            {
                perms |= Perms.X;
            }

            var fwb = s.Host?.Caps.Fwb == true;
            why.Add(Rules.Arm64Prot, Fmt.Cached("prot.normal", (fwb, dic, perms), static k => $"cacheable: Normal ({(k.fwb ? "FWB forces write-back whatever the guest's stage-1 says" : "without FWB the guest's stage-1 can weaken it")}){(k.dic ? ", executable up front since CTR_EL0.DIC" : "")}: {Fmt.Perms(k.perms)}"),
                s.FwbFact, s.DicFact);
        }

        // 13. A permission fault on a mapping of the same size only relaxes it.
        var ipa = f.Gpa.AlignDown(size);
        if (f.Kind == FaultKind.Permission && s.Stage2.TryFind(f.Gpa.Value, out var cur))
        {
            var granule = f.Granule ?? cur.Value.Granule;
            if (granule == size)
            {
                var relaxed = cur.Value.Perms | perms;
                why.Add(Rules.Arm64RelaxPerms, $"permission fault on a {Fmt.Size(granule)} entry of the same size: permissions relaxed to {Fmt.Perms(relaxed)}, attributes kept",
                    fault, new Fact("stage2.entry", $"{cur.Value.MemType} {Fmt.Size(cur.Value.Granule)} {Fmt.Perms(cur.Value.Perms)}", cur.Value.DecidedSeq));
                return Done(s, seq, FaultOutcome.Relaxed, 0, new Mapping(f.Gpa.AlignDown(granule), granule, cur.Value.MemType, null, relaxed), why);
            }
        }

        var mapping = new Mapping(ipa, size, memType, null, perms);
        why.Add(Rules.Arm64Map, Fmt.Cached("map", (memType, size, perms), static k => $"maps {Fmt.Shape(k.memType, k.size, null, k.perms)}"), slotFact, vmaFact);
        return Done(s, seq, FaultOutcome.Mapped, 0, mapping, why);
    }

    /// <summary>get_vma_page_shift, then fault_supports_stage2_huge_mapping per size (the kernel's switch with fall-through).</summary>
    private static (ulong Size, bool ForcePte) BlockSize(RunState s, MemslotState slot, VmaState vma, Hva hva, Why why, Fact vmaFact)
    {
        if (slot.LogDirty || s.VmType == VmType.Protected)
        {
            why.Add(Rules.Arm64LoggingForcePte, slot.LogDirty ? "dirty logging is on: 4K pages only (force_pte)" : "protected VM (pKVM): 4K pages only (force_pte)", Facts.SlotFlags(slot), Facts.VmType(s));
            return (P4K, true);
        }

        ulong shiftSize;
        var pfnmap = (vma.Flags & VmaFlags.VM_PFNMAP) != 0;
        var hugetlb = (vma.Flags & VmaFlags.VM_HUGETLB) != 0 || vma.Backing.Kind == BackingKind.Hugetlb;
        if (hugetlb && !pfnmap)
        {
            shiftSize = vma.Backing.HostPageSize is { } hps and > P4K ? hps : P2M;
            why.Add(Rules.Arm64VmaPageShift, Fmt.Cached("shift.hugetlb", shiftSize, static k => $"hugetlb VMA: the host page size {Fmt.Size(k)} bounds the block"), vmaFact, new Fact("vma.backing.hostPageSize", Fmt.Size(shiftSize), vma.Seq));
        }
        else if (!pfnmap)
        {
            shiftSize = P4K;
            why.Add(Rules.Arm64VmaPageShift, "not VM_PFNMAP and not hugetlb: PAGE_SIZE", Facts.VmaFlags(vma));
        }
        else if (!s.Policy.PfnmapBlocks)
        {
            shiftSize = P4K;
            why.Add(Rules.Arm64VmaPageShift, "VM_PFNMAP before 5.14: always 4K", Facts.VmaFlags(vma), Facts.Policy(s));
        }
        else
        {
            // The kernel's "pa" is vm_pgoff << PAGE_SHIFT plus the offset into the VMA.
            var pa = (vma.PgOff << 12) + (hva.Value - vma.Start);
            shiftSize = P4K;
            foreach (var size in new[] { P1G, P2M })
            {
                var congruent = (hva.Value & (size - 1)) == (pa & (size - 1));
                var inside = (hva.Value & ~(size - 1)) >= vma.Start && AlignUp(hva.Value, size) <= vma.End;
                if (congruent && inside)
                {
                    shiftSize = size;
                    break;
                }
            }

            why.Add(Rules.Arm64VmaPageShift, shiftSize == P4K
                ? "VM_PFNMAP whose hva and pa are not congruent at 2M (or the block leaves the VMA): 4K"
                : Fmt.Cached("shift.pfnmap", shiftSize, static k => $"VM_PFNMAP with hva and pa congruent modulo {Fmt.Size(k)} and the block inside the VMA: {Fmt.Size(k)}"),
                Facts.VmaFlags(vma), new Fact("vma.pgoff", Fmt.Hex(vma.PgOff), vma.Seq), new Fact("hva", hva.ToString(), slot.Seq));
        }

        // The kernel's switch: PUD -> PMD -> PAGE with fall-through when the memslot cannot hold the block.
        var slotFact = Facts.Slot(slot);
        if (shiftSize >= P1G)
        {
            if (shiftSize == P1G && SupportsHuge(slot, hva, P1G))
            {
                why.Add(Rules.Arm64HugeMapping, "the memslot's gpa and hva are congruent at 1G and the block lies inside it: 1G", slotFact);
                return (P1G, false);
            }

            why.Add(Rules.Arm64HugeMapping, "the memslot cannot hold a 1G block here: try 2M", slotFact);
            shiftSize = P2M;
        }

        if (shiftSize == P32M)
        {
            why.Add(Rules.Arm64HugeMapping, "contiguous-PMD hugetlb (32M): mapped with 2M blocks", vmaFact);
            shiftSize = P2M;
        }

        if (shiftSize == P2M)
        {
            if (SupportsHuge(slot, hva, P2M))
            {
                why.Add(Rules.Arm64HugeMapping, "the memslot's gpa and hva are congruent at 2M and the block lies inside it: 2M", slotFact);
                return (P2M, false);
            }

            why.Add(Rules.Arm64HugeMapping, "the memslot cannot hold a 2M block here: 4K, forced (no later THP upgrade)", slotFact);
            return (P4K, true);
        }

        if (shiftSize == P64K)
        {
            why.Add(Rules.Arm64HugeMapping, "contiguous-PTE hugetlb (64K): mapped with 4K pages, forced", vmaFact);
            return (P4K, true);
        }

        return (P4K, false);
    }

    /// <summary>fault_supports_stage2_huge_mapping: gpa and hva congruent modulo size, block inside the memslot.</summary>
    internal static bool SupportsHuge(MemslotState slot, Hva hva, ulong size)
    {
        var uaddrStart = slot.Hva.Value;
        var uaddrEnd = uaddrStart + slot.Size;
        if ((slot.Gpa.Value & (size - 1)) != (uaddrStart & (size - 1)))
        {
            return false;
        }

        return hva.Value >= AlignUp(uaddrStart, size) && hva.Value < (uaddrEnd & ~(size - 1));
    }

    /// <summary>Rule 8: which policy decides cacheability, and whether the fault is refused.</summary>
    private static (bool ForceNc, bool Refuse) Cacheability(RunState s, VmaState vma, Why why, Fact vmaFact)
    {
        switch (s.Policy.Cacheability)
        {
            case Arm64Cacheability.PfnValid:
                if (!vma.StructPage)
                {
                    why.Add(Rules.Arm64PfnValid, "the pfn has no struct page (!pfn_valid): device memory, forced non-cacheable", Facts.StructPage(vma), Facts.Policy(s));
                    return (true, false);
                }

                why.Add(Rules.Arm64PfnValid, "the pfn has a struct page (pfn_valid): cacheable", Facts.StructPage(vma), Facts.Policy(s));
                return (false, false);

            case Arm64Cacheability.LinearMap:
            case Arm64Cacheability.AllowAnyUncached:
                if (!vma.LinearMap)
                {
                    why.Add(Rules.Arm64LinearMap, "the pfn is outside the kernel linear map (!pfn_is_map_memory): device memory, forced non-cacheable; the VMA's pgprot is not consulted", Facts.LinearMap(vma), Facts.VmaMemType(vma), Facts.Policy(s));
                    return (true, false);
                }

                why.Add(Rules.Arm64LinearMap, "the pfn is in the kernel linear map: cacheable", Facts.LinearMap(vma), Facts.Policy(s));
                return (false, false);

            default:
                if (!vma.IsPfnOrMixedMap || vma.LinearMap)
                {
                    why.Add(Rules.Arm64ForceNonCacheable, vma.IsPfnOrMixedMap
                        ? "PFNMAP/MIXEDMAP whose pfn is in the linear map: cacheable"
                        : "not a PFNMAP/MIXEDMAP VMA: assumed cacheable", Facts.VmaFlags(vma), Facts.LinearMap(vma), Facts.Policy(s));
                    return (false, false);
                }

                if (!vma.Cacheable)
                {
                    why.Add(Rules.Arm64ForceNonCacheable, $"VM_PFNMAP VMA outside the linear map with a non-cacheable pgprot: forced non-cacheable",
                        Facts.VmaFlags(vma), Facts.VmaMemType(vma), Facts.LinearMap(vma));
                    return (true, false);
                }

                var fwb = s.Host?.Caps.Fwb == true;
                var dic = s.Host?.Caps.CacheDic == true;
                if (fwb && dic)
                {
                    why.Add(Rules.Arm64CacheablePfnmap, "cacheable PFNMAP outside the linear map, and the host has FWB and DIC: mapped cacheable", Facts.VmaFlags(vma), Facts.VmaMemType(vma), s.FwbFact, s.DicFact);
                    return (false, false);
                }

                why.Add(Rules.Arm64CacheablePfnmap, "cacheable PFNMAP outside the linear map, but the host lacks FWB or DIC: the fault fails with -EFAULT", Facts.VmaFlags(vma), Facts.VmaMemType(vma), s.FwbFact, s.DicFact);
                return (false, true);
        }
    }

    private static FaultResolved GmemAbort(RunState s, GuestFaulted f, long seq, MemslotState slot, Why why, Fact fault)
    {
        var offset = slot.GuestMemfdOffset + (f.Gpa.AlignDown(4096).Value - slot.Gpa.Value);
        if (slot.GuestMemfd is not { } fd || !s.Gmem.TryGetValue(fd, out var g) || g.ClosedSeq is not null || g.Holes.TryFind(offset, out _))
        {
            var closed = slot.GuestMemfd is { } f2 && s.Gmem.TryGetValue(f2, out var g2) ? (g2.ClosedSeq ?? (g2.Holes.TryFind(offset, out var h) ? h.Value : g2.Seq)) : slot.Seq;
            why.Add(Rules.Arm64GmemAbort, "guest_memfd-backed memslot, but the guest_memfd page is gone (file closed or hole punched): KVM_EXIT_MEMORY_FAULT", fault, Facts.Slot(slot), new Fact("guest_memfd", $"fd {slot.GuestMemfd}", closed));
            return Done(s, seq, FaultOutcome.MemoryFaultExit, Errno.EFAULT, null, why);
        }

        var dic = s.Host?.Caps.CacheDic == true;
        var perms = Perms.R | (slot.ReadOnly ? 0 : Perms.W) | (f.Access == Access.Exec || dic ? Perms.X : 0);
        var m = new Mapping(f.Gpa.AlignDown(4096), 4096, Stage2MemType.Normal, null, perms);
        why.Add(Rules.Arm64GmemAbort, $"guest_memfd-backed memslot (gmem_abort): always Normal, page size: {Fmt.Mapping(m)}", fault, Facts.Slot(slot), new Fact("guest_memfd", $"fd {fd} size {Fmt.Hex(g.Size)} flags {Fmt.Flags(g.Flags)}", g.Seq), s.DicFact);
        return Done(s, seq, FaultOutcome.Mapped, 0, m, why);
    }

    internal static ulong AlignUp(ulong v, ulong size) => (v + size - 1) & ~(size - 1);

    private static FaultResolved Done(RunState s, long seq, FaultOutcome outcome, int errno, Mapping? m, Why why) =>
        new(seq, outcome, errno, m, s.Policy.Id, why.Build());
}
