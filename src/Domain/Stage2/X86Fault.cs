using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>
/// x86 TDP (EPT/NPT) and shadow faults: kvm_mmu_faultin_pfn, kvm_mmu_hugepage_adjust (arch/x86/kvm/mmu/mmu.c),
/// kvm_is_mmio_pfn and make_spte (spte.c), vmx_get_mt_mask (vmx/vmx.c); domain.md section 4.
/// </summary>
internal static class X86Fault
{
    private const ulong P4K = 4096, P2M = 2UL << 20, P1G = 1UL << 30;

    /// <summary>kvm_mem_is_private: the VM attribute, or (in-place conversion proposal) the guest_memfd's shareability.</summary>
    public static (bool Private, long? Seq) AttributePrivate(RunState s, Gpa gpa)
    {
        if (s.SlotAt(gpa) is { HasGmem: true, GuestMemfd: { } fd } slot && s.Gmem.TryGetValue(fd, out var g) && g.ConvertsInPlace)
        {
            var offset = slot.GuestMemfdOffset + (gpa.Value - slot.Gpa.Value);
            if (g.Shared.TryFind(offset, out var sh))
            {
                return (false, sh.Value);
            }

            return ((g.Flags & GuestMemfdFlags.INIT_SHARED) == 0, g.Seq);
        }

        if (s.PrivateAttr.TryFind(gpa.Value, out var p))
        {
            return (true, p.Value);
        }

        return (false, s.SharedAttr.TryFind(gpa.Value, out var sa) ? sa.Value : null);
    }

    /// <summary>Fault privacy: the hardware bit on SNP/TDX; derived from the attribute on sw_protected; shared otherwise.</summary>
    public static bool FaultIsPrivate(RunState s, GuestFaulted f) => s.VmType switch
    {
        VmType.Snp or VmType.Tdx => f.Private ?? false,
        VmType.SwProtected => AttributePrivate(s, f.Gpa).Private,
        _ => false,
    };

    /// <summary>The slot's pfns come only from guest_memfd (6.18: a guest_memfd created with MMAP).</summary>
    public static bool GmemOnly(RunState s, MemslotState slot) =>
        slot.HasGmem && slot.GuestMemfd is { } fd && s.Gmem.TryGetValue(fd, out var g) && (g.Flags & GuestMemfdFlags.MMAP) != 0 && s.Policy.Holds(Rules.GmemSupportedFlags);

    public static FaultResolved Decide(RunState s, GuestFaulted f, long seq)
    {
        var why = new Why();
        var fault = Facts.Fault(f, seq);
        var write = f.Access == Access.Write;
        var faultPrivate = FaultIsPrivate(s, f);
        var (attrPrivate, attrSeq) = AttributePrivate(s, f.Gpa);
        var slot = s.SlotAt(f.Gpa);
        var checkFirst = s.Policy.Holds(Rules.X86PrivateMismatch);

        // 1. Privacy mismatch: since 6.10 checked before the memslot lookup.
        if (s.HasPrivateMemory && s.Policy.Holds(Rules.X86Gmem) && (checkFirst || slot is not null) && faultPrivate != attrPrivate)
        {
            return MismatchExit(s, f, seq, why, fault, faultPrivate, attrPrivate, attrSeq);
        }

        // 2. No memslot.
        if (slot is null)
        {
            if (faultPrivate)
            {
                why.Add(Rules.X86NoMemslot, "private fault with no memslot: KVM_EXIT_MEMORY_FAULT (flags PRIVATE)", fault);
                return Done(s, seq, FaultOutcome.MemoryFaultExit, Errno.EFAULT, null, why);
            }

            why.Add(Rules.X86NoMemslot, "no memslot covers the gpa: emulated as MMIO", fault);
            return Done(s, seq, FaultOutcome.MmioExit, 0, null, why);
        }

        var slotFact = Facts.Slot(slot);

        // 3. Where the pfn comes from.
        var fromGmem = faultPrivate || GmemOnly(s, slot);
        bool isMmio;
        bool hostWritable;
        ulong hostLevel;
        if (fromGmem)
        {
            var offset = slot.GuestMemfdOffset + (f.Gpa.AlignDown(P4K).Value - slot.Gpa.Value);
            if (!slot.HasGmem || slot.GuestMemfd is not { } fd || !s.Gmem.TryGetValue(fd, out var g))
            {
                why.Add(Rules.X86Gmem, faultPrivate
                    ? "private fault in a memslot without guest_memfd: KVM_EXIT_MEMORY_FAULT"
                    : "guest_memfd-only memslot without a guest_memfd: KVM_EXIT_MEMORY_FAULT", fault, slotFact);
                return Done(s, seq, FaultOutcome.MemoryFaultExit, Errno.EFAULT, null, why);
            }

            if (g.ClosedSeq is { } closed)
            {
                why.Add(Rules.X86Gmem, "the guest_memfd was closed: kvm_gmem_get_pfn fails, KVM_EXIT_MEMORY_FAULT", fault, slotFact, new Fact("guest_memfd.closed", $"fd {fd}", closed));
                return Done(s, seq, FaultOutcome.MemoryFaultExit, Errno.EFAULT, null, why);
            }

            if (g.Holes.TryFind(offset, out var hole))
            {
                why.Add(Rules.GmemFreshFolio, $"a hole was punched at guest_memfd offset {Fmt.Hex(offset)}: kvm_gmem_get_folio allocates a fresh folio and the page maps again", fault, new Fact("guest_memfd.punch_hole", $"fd {fd}", hole.Value));
            }

            why.Add(Rules.X86Gmem, faultPrivate
                ? $"private fault: the pfn comes from guest_memfd fd {fd} at offset {Fmt.Hex(offset)} (4K folios)"
                : $"guest_memfd-only memslot (MMAP): the pfn comes from guest_memfd fd {fd} at offset {Fmt.Hex(offset)}", fault, slotFact, new Fact("guest_memfd", $"fd {fd} flags {Fmt.Flags(g.Flags)}", g.Seq));
            isMmio = false;
            hostWritable = !slot.ReadOnly;
            hostLevel = P4K;
        }
        else
        {
            if (write && slot.ReadOnly)
            {
                why.Add(Rules.X86ReadOnlyWrite, "write to a KVM_MEM_READONLY memslot: emulated as MMIO", fault, slotFact, Facts.SlotFlags(slot));
                return Done(s, seq, FaultOutcome.MmioExit, 0, null, why);
            }

            var hva = slot.HvaOf(f.Gpa);
            var vma = s.VmaAt(hva);
            if (vma is null)
            {
                why.Add(Rules.X86NoVma, $"no VMA at hva {hva}: the pfn lookup fails, -EFAULT", fault, slotFact);
                return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
            }

            var vmaFact = Facts.Vma(vma);
            if (s.Poisoned.TryFind(hva.Value, out var poison))
            {
                why.Add(Rules.X86NoVma, "the host page is hardware-poisoned: SIGBUS to the VMM", fault, new Fact("madvise", "MADV_HWPOISON", poison.Value));
                return Done(s, seq, FaultOutcome.Sigbus, 0, null, why);
            }

            var pfnmap = vma.IsPfnOrMixedMap;
            if (write && ((vma.Prot & Perms.W) == 0 || (pfnmap && (vma.Flags & VmaFlags.VM_SHARED) == 0)))
            {
                why.Add(Rules.X86NoVma, "write fault on a host mapping that cannot be written: -EFAULT", fault, vmaFact, Facts.VmaProt(vma));
                return Done(s, seq, FaultOutcome.Error, Errno.EFAULT, null, why);
            }

            var sharedWritable = (vma.Prot & Perms.W) != 0 && (vma.Flags & VmaFlags.VM_SHARED) != 0;
            var written = s.HostWritten.TryFind(hva.Value, out var w) ? w.Value : (long?)null;
            hostWritable = write || (sharedWritable && (pfnmap || vma.Backing.Kind is BackingKind.Shmem)) || (written is not null && (vma.Prot & Perms.W) != 0);
            if (write)
            {
                why.Add(Rules.X86Perms, "write fault: the host page is faulted in writable", fault, Facts.VmaProt(vma));
            }
            else if (pfnmap && hostWritable)
            {
                why.Add(Rules.X86Perms, "shared writable PFNMAP: writable host ptes", fault, Facts.VmaProt(vma));
            }
            else if (hostWritable && written is null)
            {
                why.Add(Rules.X86Perms, $"{(f.Access == Access.Exec ? "exec" : "read")} fault on a shared writable shmem mapping: its host ptes are writable (no write-notify), so hva_to_pfn maps it writable", fault, Facts.VmaProt(vma), Facts.Vma(vma));
            }
            else if (hostWritable)
            {
                why.Add(Rules.X86Perms, $"{(f.Access == Access.Exec ? "exec" : "read")} fault on a page a guest write already made writable in the host: hva_to_pfn maps it writable", fault, Facts.VmaProt(vma), new Fact("host.pte", "writable", written));
            }
            else
            {
                why.Add(Rules.X86Perms, $"{(f.Access == Access.Exec ? "exec" : "read")} fault: the host page is mapped without W until the guest writes (the shared zero page for untouched anonymous memory)", fault, Facts.VmaProt(vma));
            }

            // 5. kvm_is_mmio_pfn.
            if (vma.StructPage)
            {
                var reserved = vma.Backing.Kind is BackingKind.Devmem or BackingKind.Vfio;
                isMmio = reserved && vma.MemType is HostMemType.UC or HostMemType.UC_MINUS or HostMemType.WC;
                why.Add(Rules.X86MmioPfn, isMmio
                    ? "a reserved pfn with a struct page whose host type is UC/UC-/WC: MMIO"
                    : "a pfn with a struct page that is not reserved-uncached: RAM", Facts.StructPage(vma), Facts.VmaMemType(vma));
            }
            else
            {
                isMmio = vma.Backing.E820Ram != true;
                why.Add(Rules.X86MmioPfn, isMmio ? "a pfn without struct page outside E820 RAM: MMIO" : "a pfn without struct page in E820 RAM: not MMIO",
                    Facts.StructPage(vma), new Fact("e820Ram", vma.Backing.E820Ram is { } e ? Fmt.Bool(e) : "unknown (false)", vma.Seq));
            }

            // host_pfn_mapping_level reads the host page table: hugetlb pages, or a THP not split since.
            hostLevel = vma.Backing.HostPageSize is { } hps and >= P2M ? Math.Min(hps >= P1G ? P1G : P2M, P1G)
                : HostMapping.ThpBacked(s, vma, hva, out _) ? P2M : P4K;
        }

        // 4. Level.
        var level = Level(s, slot, f.Gpa, hostLevel, why);

        // 6. Memory type.
        var (memType, ipat) = Memtype(s, isMmio, why);

        // 7. Permissions.
        var writable = hostWritable && !slot.ReadOnly;
        if (writable && !write && s.Policy.X86 == X86Memtype.Shadow && f.GuestPteDirty == false)
        {
            // Shadow paging: a read through a guest PTE whose dirty bit is clear maps without W, so that
            // the guest's first write faults and KVM can set D in the guest's page table.
            why.Add(Rules.X86ShadowCleanGpte, $"{(f.Access == Access.Exec ? "exec" : "read")} fault through a clean guest PTE (D clear): the SPTE is made without W until the guest writes", fault, new Fact("gpte.dirty", "false", seq));
            writable = false;
        }

        var perms = Perms.R | Perms.X | (writable ? Perms.W : 0);
        var m = new Mapping(f.Gpa.AlignDown(level), level, memType, ipat, perms);
        if (f.Kind == FaultKind.Translation && s.Stage2.TryFind(m.Gpa.Value, out var held) && held.Start <= m.Gpa.Value && held.End >= m.Gpa.Value + level
            && held.Value is { } h && h.Granule == level && h.MemType == memType && h.Ipat == ipat && h.Perms == perms)
        {
            // mmu_set_spte finds the same SPTE already installed: RET_PF_SPURIOUS, nothing changes.
            why.Add(Rules.X86SpuriousSpte, $"the SPTE already there is the same ({Fmt.Mapping(m)}): spurious fault, nothing changes", new Fact("stage2.entry", $"{h.MemType} {Fmt.Size(h.Granule)} {Fmt.Perms(h.Perms)}", h.DecidedSeq));
            return Done(s, seq, FaultOutcome.Kept, 0, m, why);
        }

        why.Add(Rules.X86Perms, $"maps {Fmt.Mapping(m)}{(faultPrivate ? " (private)" : "")}", slotFact);
        return Done(s, seq, FaultOutcome.Mapped, 0, m, why);
    }

    private static FaultResolved MismatchExit(RunState s, GuestFaulted f, long seq, Why why, Fact fault, bool faultPrivate, bool attrPrivate, long? attrSeq)
    {
        var attr = new Fact("memory.attributes", attrPrivate ? "private" : "shared", attrSeq);
        var how = s.VmType is VmType.Snp or VmType.Tdx ? $"the hardware reports a {(faultPrivate ? "private" : "shared")} access ({s.VmType.ToString().ToUpperInvariant()})" : "the access";
        why.Add(s.Policy.Holds(Rules.X86PrivateMismatch) ? Rules.X86PrivateMismatch : Rules.X86PrivateMismatchAfterSlot, $"{how} to a gfn whose attribute is {(attrPrivate ? "private" : "shared")}: KVM_EXIT_MEMORY_FAULT at {f.Gpa.AlignDown(P4K)} size 4K{(faultPrivate ? " flags PRIVATE" : "")}, KVM_RUN returns -EFAULT",
            fault, attr, Facts.VmType(s));
        return Done(s, seq, FaultOutcome.MemoryFaultExit, Errno.EFAULT, null, why);
    }

    private static ulong Level(RunState s, MemslotState slot, Gpa gpa, ulong hostLevel, Why why)
    {
        var level = hostLevel;
        var reasons = new List<string> { $"host mapping {Fmt.Size(hostLevel)}" };
        if (slot.LogDirty && level > P4K)
        {
            level = P4K;
            reasons.Add("dirty logging forces 4K");
        }

        while (level > P4K)
        {
            var hva = slot.HvaOf(gpa);
            var congruent = (slot.Gpa.Value & (level - 1)) == (slot.Hva.Value & (level - 1));
            var block = gpa.AlignDown(level);
            var inside = block.Value >= slot.Gpa.Value && block.Value + level <= slot.End;
            var mixed = s.HasPrivateMemory && MixesAttributes(s, block.Value, block.Value + level);
            if (congruent && inside && !mixed)
            {
                break;
            }

            reasons.Add(!congruent ? $"memslot gpa and hva not congruent at {Fmt.Size(level)}" : !inside ? $"{Fmt.Size(level)} block leaves the memslot" : $"{Fmt.Size(level)} range mixes private and shared");
            level = level == P1G ? P2M : P4K;
            _ = hva;
        }

        why.Add(Rules.X86Level, $"level {Fmt.Size(level)}: {string.Join("; ", reasons)}", Facts.Slot(slot), Facts.SlotFlags(slot));
        return level;
    }

    private static bool MixesAttributes(RunState s, ulong start, ulong end)
    {
        var priv = s.PrivateAttr.Overlapping(start, end);
        if (priv.Count == 0)
        {
            return false;
        }

        ulong covered = 0;
        foreach (var i in priv)
        {
            covered += Math.Min(i.End, end) - Math.Max(i.Start, start);
        }

        return covered != end - start;
    }

    /// <summary>Section 2's x86 rows: vmx_get_mt_mask by version, SVM and shadow paging.</summary>
    private static (Stage2MemType MemType, bool? Ipat) Memtype(RunState s, bool mmio, Why why)
    {
        var dma = new Fact("noncoherent_dma", s.NoncoherentDma > 0 ? "attached" : "none", s.NoncoherentDmaSeq);
        switch (s.Policy.X86)
        {
            case X86Memtype.Svm:
                why.Add(Rules.X86SvmMemtype, mmio
                    ? "SVM/NPT has no KVM memtype: the guest's PAT applies over the host's UC for this MMIO pfn"
                    : "SVM/NPT has no KVM memtype: the guest's PAT is honoured over the host's WB", Facts.Policy(s));
                return (mmio ? Stage2MemType.UC : Stage2MemType.WB, false);

            case X86Memtype.Shadow:
                why.Add(Rules.X86ShadowMemtype, mmio ? "shadow paging: MMIO is UC" : "shadow paging: SPTEs carry no memtype, write-back; the guest PAT is ignored", Facts.Policy(s));
                return (mmio ? Stage2MemType.UC : Stage2MemType.WB, true);
        }

        if (mmio)
        {
            why.Add(Rules.X86VmxMemtype, "MMIO pfn: EPT memtype UC", Facts.Policy(s));
            return (Stage2MemType.UC, false);
        }

        var quirkOn = QuirkIgnoreGuestPat(s, out var quirkFact);
        switch (s.Policy.X86)
        {
            case X86Memtype.Vmx610:
                if (s.NoncoherentDma == 0)
                {
                    why.Add(Rules.X86VmxGuestMtrr, "no non-coherent DMA: WB with IPAT (guest PAT ignored)", dma, Facts.Policy(s));
                    return (Stage2MemType.WB, true);
                }

                why.Add(Rules.X86VmxGuestMtrr, "non-coherent DMA attached: the guest MTRR type applies (the trace carries no guest MTRRs or CR0.CD: WB assumed), no IPAT", dma, Facts.Policy(s));
                return (Stage2MemType.WB, false);

            case X86Memtype.Vmx611 when s.Policy.Holds(Rules.X86VmxSelfSnoop) && s.Host?.Caps.SelfSnoop == true:
                why.Add(Rules.X86VmxSelfSnoop, "6.11 on a self-snoop CPU: WB without IPAT, the guest PAT is honoured", Facts.Cap(s, "selfSnoop", true), Facts.Policy(s));
                return (Stage2MemType.WB, false);

            case X86Memtype.Vmx611:
                if (s.NoncoherentDma == 0)
                {
                    why.Add(Rules.X86VmxGuestPat, "no non-coherent DMA: WB with IPAT (guest PAT ignored)", dma, Facts.Policy(s));
                    return (Stage2MemType.WB, true);
                }

                why.Add(Rules.X86VmxGuestPat, "non-coherent DMA attached: WB without IPAT, the guest PAT is honoured", dma, Facts.Policy(s));
                return (Stage2MemType.WB, false);

            default:
                if (s.NoncoherentDma == 0 && quirkOn)
                {
                    why.Add(Rules.X86VmxIgnoreGuestPatQuirk, "no non-coherent DMA and KVM_X86_QUIRK_IGNORE_GUEST_PAT on: WB with IPAT (guest PAT ignored)", dma, quirkFact, Facts.Policy(s));
                    return (Stage2MemType.WB, true);
                }

                why.Add(Rules.X86VmxIgnoreGuestPatQuirk, s.NoncoherentDma > 0
                    ? "non-coherent DMA attached: WB without IPAT, the guest PAT is honoured"
                    : "KVM_X86_QUIRK_IGNORE_GUEST_PAT is off: WB without IPAT, the guest PAT is honoured", dma, quirkFact, Facts.Policy(s));
                return (Stage2MemType.WB, false);
        }
    }

    /// <summary>The quirk is on unless disabled (which only self-snoop CPUs allow); TDX VMs never have it.</summary>
    public static bool QuirkIgnoreGuestPat(RunState s, out Fact fact)
    {
        if (s.VmType == VmType.Tdx)
        {
            fact = new Fact("quirk.IGNORE_GUEST_PAT", "off (TDX)", s.VmSeq);
            return false;
        }

        if (s.DisabledQuirks.TryGetValue(X86Quirk.IgnoreGuestPat, out var seq))
        {
            fact = new Fact("quirk.IGNORE_GUEST_PAT", "disabled", seq);
            return false;
        }

        fact = new Fact("quirk.IGNORE_GUEST_PAT", "on (default)", null);
        return true;
    }

    private static FaultResolved Done(RunState s, long seq, FaultOutcome outcome, int errno, Mapping? m, Why why) =>
        new(seq, outcome, errno, m, s.Policy.Id, why.Build());
}
