using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Domain.Stage2.HostMapping;
using Ctx = Audit.Domain.Stage2.X86FaultContext;
using Step = Audit.Domain.Model.RuleStep<Audit.Domain.Stage2.X86FaultContext, Audit.Domain.Events.FaultResolved>;

namespace Audit.Domain.Stage2;

/// <summary>The x86 fault's rules, one function each, in the order the kernel applies them.</summary>
internal static class X86FaultRules
{
    public static readonly RuleChain<Ctx, FaultResolved> Chain = new(
    [
        new Step(Rules.X86PrivateMismatch, PrivateMismatch),
        new Step(Rules.X86NoMemslot, NoMemslot),
        new Step(Rules.X86PrivateMismatchAfterSlot, PrivateMismatch),
        new Step(Rules.X86Gmem, Gmem),
        new Step(Rules.X86ReadOnlyWrite, ReadOnlyWrite),
        new Step(Rules.X86NoVma, HvaToPfn),
        new Step(Rules.X86MmioPfn, MmioPfn),
        new Step(Rules.X86Level, Level),
        new Step(Rules.X86VmxMemtype, VmxMmio),
        new Step(Rules.X86VmxGuestMtrr, VmxGuestMtrr),
        new Step(Rules.X86VmxSelfSnoop, VmxSelfSnoop),
        new Step(Rules.X86VmxGuestPat, VmxGuestPat),
        new Step(Rules.X86VmxIgnoreGuestPatQuirk, VmxIgnoreGuestPatQuirk),
        new Step(Rules.X86SvmMemtype, SvmMemtype),
        new Step(Rules.X86ShadowMemtype, ShadowMemtype),
        new Step(Rules.X86ShadowCleanGpte, ShadowCleanGpte),
        new Step(Rules.X86SpuriousSpte, Spurious),
        new Step(Rules.X86Perms, MakeSpte),
    ]);

    /// <summary>The kernel's order of the private/shared check: first (6.10+) or after the memslot checks (6.8, 6.9).</summary>
    private static FaultResolved? PrivateMismatch(Ctx c)
    {
        var (attrPrivate, attrSeq) = X86Fault.AttributePrivate(c.S, c.F.Gpa);
        if (!c.S.HasPrivateMemory || c.FaultPrivate == attrPrivate)
        {
            return null;
        }

        var rule = c.S.Policy.Holds(Rules.X86PrivateMismatch) ? Rules.X86PrivateMismatch : Rules.X86PrivateMismatchAfterSlot;
        var attr = new Fact("memory.attributes", attrPrivate ? "private" : "shared", attrSeq);
        var how = c.S.VmType is VmType.Snp or VmType.Tdx ? $"the hardware reports a {(c.FaultPrivate ? "private" : "shared")} access ({c.S.VmType.ToString().ToUpperInvariant()})" : "the access";
        c.Why.Add(rule, $"{how} to a gfn whose attribute is {(attrPrivate ? "private" : "shared")}: KVM_EXIT_MEMORY_FAULT at {c.F.Gpa.AlignDown(P4K)} size 4K{(c.FaultPrivate ? " flags PRIVATE" : "")}, KVM_RUN returns -EFAULT",
            c.Fault, attr, Facts.VmType(c.S));
        return c.Done(FaultOutcome.MemoryFaultExit, Errno.EFAULT);
    }

    private static FaultResolved? NoMemslot(Ctx c)
    {
        if (c.Slot is not null)
        {
            return null;
        }

        if (c.FaultPrivate)
        {
            c.Why.Add(Rules.X86NoMemslot, "private fault with no memslot: KVM_EXIT_MEMORY_FAULT (flags PRIVATE)", c.Fault);
            return c.Done(FaultOutcome.MemoryFaultExit, Errno.EFAULT);
        }

        c.Why.Add(Rules.X86NoMemslot, "no memslot covers the gpa: emulated as MMIO", c.Fault);
        return c.Done(FaultOutcome.MmioExit);
    }

    /// <summary>kvm_mmu_faultin_pfn_gmem: a private fault (or a guest_memfd-only slot) takes its pfn from the file.</summary>
    private static FaultResolved? Gmem(Ctx c)
    {
        var slot = c.Slot!;
        c.FromGmem = c.FaultPrivate || X86Fault.GmemOnly(c.S, slot);
        if (!c.FromGmem)
        {
            return null;
        }

        var offset = slot.GuestMemfdOffset + (c.F.Gpa.AlignDown(P4K).Value - slot.Gpa.Value);
        if (!slot.HasGmem || slot.GuestMemfd is not { } fd || !c.S.Gmem.TryGetValue(fd, out var g))
        {
            c.Why.Add(Rules.X86Gmem, c.FaultPrivate
                ? "private fault in a memslot without guest_memfd: KVM_EXIT_MEMORY_FAULT"
                : "guest_memfd-only memslot without a guest_memfd: KVM_EXIT_MEMORY_FAULT", c.Fault, c.SlotFact);
            return c.Done(FaultOutcome.MemoryFaultExit, Errno.EFAULT);
        }

        if (g.ClosedSeq is { } closed)
        {
            c.Why.Add(Rules.X86Gmem, "the guest_memfd was released: kvm_gmem_get_pfn fails, KVM_EXIT_MEMORY_FAULT", c.Fault, c.SlotFact, new Fact("guest_memfd.closed", $"fd {fd}", closed));
            return c.Done(FaultOutcome.MemoryFaultExit, Errno.EFAULT);
        }

        if (g.Holes.TryFind(offset, out var hole))
        {
            c.Why.Add(Rules.GmemFreshFolio, $"a hole was punched at guest_memfd offset {Fmt.Hex(offset)}: kvm_gmem_get_folio allocates a fresh folio and the page maps again", c.Fault, new Fact("guest_memfd.punch_hole", $"fd {fd}", hole.Value));
        }

        c.Why.Add(Rules.X86Gmem, c.FaultPrivate
            ? $"private fault: the pfn comes from guest_memfd fd {fd} at offset {Fmt.Hex(offset)} (4K folios)"
            : $"guest_memfd-only memslot (MMAP): the pfn comes from guest_memfd fd {fd} at offset {Fmt.Hex(offset)}", c.Fault, c.SlotFact, new Fact("guest_memfd", $"fd {fd} flags {Fmt.Flags(g.Flags)}", g.Seq));
        c.IsMmio = false;
        c.HostWritable = !slot.ReadOnly;
        c.Writable = c.HostWritable;
        c.HostLevel = P4K;
        return null;
    }

    private static FaultResolved? ReadOnlyWrite(Ctx c)
    {
        if (c.FromGmem || !c.Write || !c.Slot!.ReadOnly)
        {
            return null;
        }

        c.Why.Add(Rules.X86ReadOnlyWrite, "write to a KVM_MEM_READONLY memslot: emulated as MMIO", c.Fault, c.SlotFact, Facts.SlotFlags(c.Slot));
        return c.Done(FaultOutcome.MmioExit);
    }

    /// <summary>hva_to_pfn: the VMA, hwpoison, a write the host mapping refuses, and whether the host pte is writable.</summary>
    private static FaultResolved? HvaToPfn(Ctx c)
    {
        if (c.FromGmem)
        {
            return null;
        }

        var hva = c.Slot!.HvaOf(c.F.Gpa);
        if (c.S.VmaAt(hva) is not { } vma)
        {
            c.Why.Add(Rules.X86NoVma, $"no VMA at hva {hva}: the pfn lookup fails, -EFAULT", c.Fault, c.SlotFact);
            return c.Done(FaultOutcome.Error, Errno.EFAULT);
        }

        c.Vma = vma;
        if (c.S.Poisoned.TryFind(hva.Value, out var poison))
        {
            c.Why.Add(Rules.X86NoVma, "the host page is hardware-poisoned: SIGBUS to the VMM", c.Fault, new Fact("madvise", "MADV_HWPOISON", poison.Value));
            return c.Done(FaultOutcome.Sigbus);
        }

        var pfnmap = vma.IsPfnOrMixedMap;
        if (c.Write && ((vma.Prot & Perms.W) == 0 || (pfnmap && (vma.Flags & VmaFlags.VM_SHARED) == 0)))
        {
            c.Why.Add(Rules.X86NoVma, "write fault on a host mapping that cannot be written: -EFAULT", c.Fault, Facts.Vma(vma), Facts.VmaProt(vma));
            return c.Done(FaultOutcome.Error, Errno.EFAULT);
        }

        if (c.Write)
        {
            c.HostWritable = true;
            c.Why.Add(Rules.X86Perms, "write fault: the host page is faulted in writable", c.Fault, Facts.VmaProt(vma));
        }
        else
        {
            c.HostWritable = ReadGetsWritable(c.S, vma, hva, out var why, out var fact);
            c.Why.Add(Rules.X86Perms, $"{(c.F.Access == Access.Exec ? "exec" : "read")} fault: {why}", c.Fault, fact);
        }

        // make_spte: W only if the host pte is writable and the slot is not read-only.
        c.Writable = c.HostWritable && !c.Slot.ReadOnly;

        // host_pfn_mapping_level reads the host page table: hugetlb pages, or a THP not split since.
        c.HostLevel = vma.Backing.HostPageSize is { } hps and >= P2M ? (hps >= P1G ? P1G : P2M)
            : ThpBacked(c.S, vma, hva, out _) ? P2M : P4K;
        return null;
    }

    private static FaultResolved? MmioPfn(Ctx c)
    {
        if (c.Vma is not { } vma)
        {
            return null;
        }

        if (vma.StructPage)
        {
            var reserved = vma.Backing.Kind is BackingKind.Devmem or BackingKind.Vfio;
            c.IsMmio = reserved && vma.MemType is HostMemType.UC or HostMemType.UC_MINUS or HostMemType.WC;
            c.Why.Add(Rules.X86MmioPfn, c.IsMmio
                ? "a reserved pfn with a struct page whose host type is UC/UC-/WC: MMIO"
                : "a pfn with a struct page that is not reserved-uncached: RAM", Facts.StructPage(vma), Facts.VmaMemType(vma));
            return null;
        }

        c.IsMmio = vma.Backing.E820Ram != true;
        c.Why.Add(Rules.X86MmioPfn, c.IsMmio ? "a pfn without struct page outside E820 RAM: MMIO" : "a pfn without struct page in E820 RAM: not MMIO",
            Facts.StructPage(vma), new Fact("e820Ram", vma.Backing.E820Ram is { } e ? Fmt.Bool(e) : "unknown (false)", vma.Seq));
        return null;
    }

    /// <summary>kvm_mmu_hugepage_adjust: the host level, capped by dirty logging, the slot's alignment and mixed attributes.</summary>
    private static FaultResolved? Level(Ctx c)
    {
        var slot = c.Slot!;
        var level = c.HostLevel;
        var reasons = new List<string> { $"host mapping {Fmt.Size(c.HostLevel)}" };
        if (slot.LogDirty && level > P4K)
        {
            level = P4K;
            reasons.Add("dirty logging forces 4K");
        }

        while (level > P4K)
        {
            var congruent = Memslots.HostBlocks.Congruent(slot.Gpa.Value, slot.Hva.Value, level);
            var block = c.F.Gpa.AlignDown(level);
            var inside = block.Value >= slot.Gpa.Value && block.Value + level <= slot.End;
            var mixed = c.S.HasPrivateMemory && X86Fault.MixesAttributes(c.S, block.Value, block.Value + level);
            if (congruent && inside && !mixed)
            {
                break;
            }

            reasons.Add(!congruent ? $"memslot gpa and hva not congruent at {Fmt.Size(level)}" : !inside ? $"{Fmt.Size(level)} block leaves the memslot" : $"{Fmt.Size(level)} range mixes private and shared");
            level = level == P1G ? P2M : P4K;
        }

        c.Level = level;
        c.Why.Add(Rules.X86Level, $"level {Fmt.Size(level)}: {string.Join("; ", reasons)}", Facts.Slot(slot), Facts.SlotFlags(slot));
        return null;
    }

    private static FaultResolved? VmxMmio(Ctx c)
    {
        if (c.IsMmio)
        {
            c.Memtype = (Stage2MemType.UC, false);
            c.Why.Add(Rules.X86VmxMemtype, "MMIO pfn: EPT memtype UC", Facts.Policy(c.S));
        }

        return null;
    }

    private static FaultResolved? VmxGuestMtrr(Ctx c)
    {
        if (c.Memtype is not null)
        {
            return null;
        }

        var noDma = c.S.NoncoherentDma == 0;
        c.Memtype = (Stage2MemType.WB, noDma);
        c.Why.Add(Rules.X86VmxGuestMtrr, noDma
            ? "no non-coherent DMA: WB with IPAT (guest PAT ignored)"
            : "non-coherent DMA attached: the guest MTRR type applies (the trace carries no guest MTRRs or CR0.CD: WB assumed), no IPAT", c.DmaFact, Facts.Policy(c.S));
        return null;
    }

    private static FaultResolved? VmxSelfSnoop(Ctx c)
    {
        if (c.Memtype is null && c.S.Host?.Caps.SelfSnoop == true)
        {
            c.Memtype = (Stage2MemType.WB, false);
            c.Why.Add(Rules.X86VmxSelfSnoop, "6.11 on a self-snoop CPU: WB without IPAT, the guest PAT is honoured", Facts.Cap(c.S, "selfSnoop", true), Facts.Policy(c.S));
        }

        return null;
    }

    private static FaultResolved? VmxGuestPat(Ctx c)
    {
        if (c.Memtype is not null)
        {
            return null;
        }

        var noDma = c.S.NoncoherentDma == 0;
        c.Memtype = (Stage2MemType.WB, noDma);
        c.Why.Add(Rules.X86VmxGuestPat, noDma
            ? "no non-coherent DMA: WB with IPAT (guest PAT ignored)"
            : "non-coherent DMA attached: WB without IPAT, the guest PAT is honoured", c.DmaFact, Facts.Policy(c.S));
        return null;
    }

    private static FaultResolved? VmxIgnoreGuestPatQuirk(Ctx c)
    {
        if (c.Memtype is not null)
        {
            return null;
        }

        var quirkOn = X86Fault.QuirkIgnoreGuestPat(c.S, out var quirkFact);
        var ipat = c.S.NoncoherentDma == 0 && quirkOn;
        c.Memtype = (Stage2MemType.WB, ipat);
        c.Why.Add(Rules.X86VmxIgnoreGuestPatQuirk, ipat
            ? "no non-coherent DMA and KVM_X86_QUIRK_IGNORE_GUEST_PAT on: WB with IPAT (guest PAT ignored)"
            : c.S.NoncoherentDma > 0
                ? "non-coherent DMA attached: WB without IPAT, the guest PAT is honoured"
                : "KVM_X86_QUIRK_IGNORE_GUEST_PAT is off: WB without IPAT, the guest PAT is honoured", c.DmaFact, quirkFact, Facts.Policy(c.S));
        return null;
    }

    private static FaultResolved? SvmMemtype(Ctx c)
    {
        c.Memtype = (c.IsMmio ? Stage2MemType.UC : Stage2MemType.WB, false);
        c.Why.Add(Rules.X86SvmMemtype, c.IsMmio
            ? "SVM/NPT has no KVM memtype: the guest's PAT applies over the host's UC for this MMIO pfn"
            : "SVM/NPT has no KVM memtype: the guest's PAT is honoured over the host's WB", Facts.Policy(c.S));
        return null;
    }

    private static FaultResolved? ShadowMemtype(Ctx c)
    {
        c.Memtype = (c.IsMmio ? Stage2MemType.UC : Stage2MemType.WB, true);
        c.Why.Add(Rules.X86ShadowMemtype, c.IsMmio ? "shadow paging: MMIO is UC" : "shadow paging: SPTEs carry no memtype, write-back; the guest PAT is ignored", Facts.Policy(c.S));
        return null;
    }

    // Shadow paging: a read through a guest PTE whose dirty bit is clear maps without W, so that the
    // guest's first write faults and KVM can set D in the guest's page table.
    private static FaultResolved? ShadowCleanGpte(Ctx c)
    {
        if (c.Writable && !c.Write && c.F.GuestPteDirty == false)
        {
            c.Why.Add(Rules.X86ShadowCleanGpte, $"{(c.F.Access == Access.Exec ? "exec" : "read")} fault through a clean guest PTE (D clear): the SPTE is made without W until the guest writes", c.Fault, new Fact("gpte.dirty", "false", c.Seq));
            c.Writable = false;
        }

        return null;
    }

    // mmu_set_spte finds the same SPTE already installed: RET_PF_SPURIOUS, nothing changes.
    private static FaultResolved? Spurious(Ctx c)
    {
        var m = Mapping(c);
        if (c.F.Kind == FaultKind.Translation && c.S.Stage2.TryFind(m.Gpa.Value, out var held) && held.Start <= m.Gpa.Value && held.End >= m.Gpa.Value + c.Level
            && held.Value is { } h && h.Granule == c.Level && h.MemType == m.MemType && h.Ipat == m.Ipat && h.Perms == m.Perms)
        {
            c.Why.Add(Rules.X86SpuriousSpte, $"the SPTE already there is the same ({Fmt.Mapping(m)}): spurious fault, nothing changes", new Fact("stage2.entry", $"{h.MemType} {Fmt.Size(h.Granule)} {Fmt.Perms(h.Perms)}", h.DecidedSeq));
            return c.Done(FaultOutcome.Kept, 0, m);
        }

        return null;
    }

    private static FaultResolved? MakeSpte(Ctx c)
    {
        var m = Mapping(c);
        c.Why.Add(Rules.X86Perms, $"maps {Fmt.Mapping(m)}{(c.FaultPrivate ? " (private)" : "")}", c.SlotFact);
        return c.Done(FaultOutcome.Mapped, 0, m);
    }

    private static Mapping Mapping(Ctx c)
    {
        var (memType, ipat) = c.Memtype ?? (Stage2MemType.WB, null);
        var perms = Perms.R | Perms.X | (c.Writable ? Perms.W : 0);
        return new Mapping(c.F.Gpa.AlignDown(c.Level), c.Level, memType, ipat, perms);
    }
}
