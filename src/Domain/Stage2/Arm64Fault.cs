using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Domain.Stage2.HostMapping;
using Ctx = Audit.Domain.Stage2.Arm64FaultContext;
using Step = Audit.Domain.Model.RuleStep<Audit.Domain.Stage2.Arm64FaultContext, Audit.Domain.Events.FaultResolved>;

namespace Audit.Domain.Stage2;

/// <summary>
/// arm64 stage-2 faults as data: kvm_handle_guest_abort, user_mem_abort and gmem_abort
/// (arch/arm64/kvm/mmu.c), then the page-table walker (hyp/pgtable.c); domain.md sections 3 and 5.
/// Each step is one rule in the kernel's order; the rules that hold in the policy's release run, and
/// the first that returns a decision ends it. Every rule that ran is in the explanation.
/// </summary>
internal static class Arm64Fault
{
    private const ulong P64K = 64UL << 10, P32M = 32UL << 20;

    public static readonly RuleChain<Ctx, FaultResolved> Chain = new(
    [
        new Step(Rules.Arm64S1ptwWrite, S1ptwIsWrite),
        new Step(Rules.Arm64S1ptwPermission, S1ptwWriteOnPermission),
        new Step(Rules.Arm64IpaRange, IpaRange),
        new Step(Rules.Arm64NoMemslot, NoMemslot),
        new Step(Rules.Arm64AccessFlag, AccessFlag),
        new Step(Rules.Arm64GmemAbort, Arm64GmemAbort.Decide),
        new Step(Rules.Arm64PermNotWriteExec, PermissionOnRead),
        new Step(Rules.Arm64NoVma, VmaLookup),
        new Step(Rules.Arm64MemslotIsLogging, MemslotIsLogging),
        new Step(Rules.Arm64LoggingForcePte, LoggingForcePte),
        new Step(Rules.Arm64PkvmPageSize, PkvmPageSize),
        new Step(Rules.Arm64VmaShift, Arm64BlockSize.VmaShiftBefore514),
        new Step(Rules.Arm64VmaPageShift, Arm64BlockSize.GetVmaPageShift),
        new Step(Rules.Arm64HugeMapping, Arm64BlockSize.FaultSupportsStage2HugeMapping),
        new Step(Rules.Arm64Hwpoison, Hwpoison),
        new Step(Rules.Arm64PfnValid, Arm64Cacheable.PfnValid),
        new Step(Rules.Arm64LinearMap, Arm64Cacheable.LinearMap),
        new Step(Rules.Arm64ForceNonCacheable, Arm64Cacheable.ForceNonCacheable),
        new Step(Rules.Arm64CacheablePfnmap, Arm64Cacheable.CacheablePfnmap),
        new Step(Rules.Arm64HostWritable, HostWritable),
        new Step(Rules.Arm64DirtyLogReadOnly, DirtyLogReadOnly),
        new Step(Rules.Arm64ExecNonCacheable, ExecNonCacheable),
        new Step(Rules.Arm64Thp, Arm64BlockSize.TransparentHugepageAdjust),
        new Step(Rules.Arm64MteSharedAtFault, MteBefore62),
        new Step(Rules.Arm64Mte, Mte),
        new Step(Rules.Arm64AllowAnyUncached, AllowAnyUncached),
        new Step(Rules.Arm64Prot, Prot),
        new Step(Rules.Arm64RelaxPerms, RelaxPerms),
        new Step(Rules.Arm64SameLeafStands, SameLeaf),
        new Step(Rules.Arm64BreakBlock, BreakBlock),
        new Step(Rules.Arm64Map, Map),
    ]);

    // Steps most faults take with the same text and fact objects, cited again (StepMemo).
    private static readonly StepMemo LoggingForcePteMemo = new(), ProtMemo = new(), MapMemo = new(), AllowAnyUncachedMemo = new();

    // "read fault: ..." by the reason ReadGetsWritable gives, one of a few literals: keyed by reference, not hashed.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> ReadFaultTexts = new(ReferenceEqualityComparer.Instance), ExecFaultTexts = new(ReferenceEqualityComparer.Instance);

    /// <summary>The FaultResolved first, then anything the walk also changed (the rest of a block it broke).</summary>
    public static IReadOnlyList<DerivedEvent> Decide(RunState s, GuestFaulted f, long seq)
    {
        var c = Ctx.Take(s, f, seq);
        var resolved = Chain.Decide(s.Policy, c);
        IReadOnlyList<DerivedEvent> derived = c.Extra is null ? [resolved] : [resolved, .. c.Extra];
        Ctx.Return(c);
        return derived;
    }

    // Before 6.2 kvm_is_write_fault called every stage-1 page-table walk a write.
    private static FaultResolved? S1ptwIsWrite(Ctx c)
    {
        if (c.F.S1ptw)
        {
            c.Write = true;
            c.Why.Add(Rules.Arm64S1ptwWrite, "a fault on a stage-1 page-table walk counts as a write (before 6.2)", c.Fault, Facts.Policy(c.S));
        }

        return null;
    }

    // From 6.2 (the S1PTW fix for read-only memslots) it is a write only when it is a permission fault.
    private static FaultResolved? S1ptwWriteOnPermission(Ctx c)
    {
        if (c.F.S1ptw)
        {
            c.Write = c.IsPermission;
            c.Why.Add(Rules.Arm64S1ptwPermission, c.Write
                ? "a permission fault on a stage-1 page-table walk: a write (the walker sets the access flag)"
                : "a translation fault on a stage-1 page-table walk: a read, so a read-only memslot maps it read-only", c.Fault, Facts.Policy(c.S));
        }

        return null;
    }

    // The IPA range is checked on translation faults only.
    private static FaultResolved? IpaRange(Ctx c)
    {
        if (c.F.Kind != FaultKind.Translation)
        {
            return null;
        }

        var ipaBits = c.S.Vm?.IpaBits ?? 40;
        var paRange = Math.Max(48, ipaBits);
        var outcome = c.Exec ? FaultOutcome.InjectIabt : FaultOutcome.InjectDabt;
        if (paRange < 64 && c.F.Gpa.Value >= 1UL << paRange)
        {
            c.Why.Add(Rules.Arm64IpaRange, $"IPA {c.F.Gpa} is beyond the host's {paRange}-bit PARange: an address size fault is injected", c.Fault);
            return c.Done(outcome);
        }

        if (ipaBits < 64 && c.F.Gpa.Value >= 1UL << ipaBits)
        {
            c.Why.Add(Rules.Arm64IpaRange, $"IPA {c.F.Gpa} is beyond the VM's {ipaBits}-bit IPA space: an external abort is injected", c.Fault, new Fact("vm.ipaBits", ipaBits.ToString(System.Globalization.CultureInfo.InvariantCulture), c.S.VmSeq));
            return c.Done(outcome);
        }

        return null;
    }

    // No memslot, or a write to a read-only one: io_mem_abort territory.
    private static FaultResolved? NoMemslot(Ctx c)
    {
        var slot = c.S.SlotAt(c.F.Gpa);
        if (slot is not null && !(c.Write && slot.ReadOnly))
        {
            c.Slot = slot;
            return null;
        }

        var where = slot is null ? "no memslot covers it" : "the memslot is KVM_MEM_READONLY";
        Fact[] facts = slot is null ? [c.Fault] : [c.Fault, Facts.Slot(slot), Facts.SlotFlags(slot)];
        // The instruction-abort test comes before the S1PTW one: a walk for a fetch injects an instruction abort.
        if (c.F.Access == Access.Exec)
        {
            c.Why.Add(Rules.Arm64NoMemslot, $"instruction fetch and {where}: an instruction abort is injected", facts);
            return c.Done(FaultOutcome.InjectIabt);
        }

        if (c.F.S1ptw)
        {
            c.Why.Add(Rules.Arm64NoMemslot, $"stage-1 page-table walk and {where}: a data abort is injected", facts);
            return c.Done(FaultOutcome.InjectDabt);
        }

        if (c.F.Cm && slot is null)
        {
            c.Why.Add(Rules.Arm64NoMemslot, "cache maintenance outside any memslot: the instruction is skipped", facts);
            return c.Done(FaultOutcome.Skipped);
        }

        c.Why.Add(Rules.Arm64NoMemslot, $"{where}: the access exits to the VMM as MMIO (KVM_EXIT_MMIO)", facts);
        return c.Done(FaultOutcome.MmioExit);
    }

    private static FaultResolved? AccessFlag(Ctx c)
    {
        if (c.F.Kind != FaultKind.AccessFlag)
        {
            return null;
        }

        c.Why.Add(Rules.Arm64AccessFlag, "access-flag fault: the entry is marked young, its attributes do not change", c.Fault, c.SlotFact);
        Mapping? m = c.S.Stage2.TryFind(c.F.Gpa.Value, out var e)
            ? new Mapping(c.F.Gpa.AlignDown(e.Value.Granule), e.Value.Granule, e.Value.MemType, null, e.Value.Perms)
            : null;
        return c.Done(FaultOutcome.Young, 0, m);
    }

    // A permission fault that is neither a write nor an exec cannot happen.
    private static FaultResolved? PermissionOnRead(Ctx c)
    {
        if (!c.IsPermission || c.Write || c.Exec)
        {
            return null;
        }

        c.Why.Add(Rules.Arm64PermNotWriteExec, "permission fault on a read: unexpected, the vCPU gets -EFAULT", c.Fault);
        return c.Done(FaultOutcome.Error, Errno.EFAULT);
    }

    private static FaultResolved? VmaLookup(Ctx c)
    {
        c.Hva = c.Slot.HvaOf(c.F.Gpa);
        if (c.S.VmaAt(c.Hva) is { } vma)
        {
            c.Vma = vma;
            return null;
        }

        c.Why.Add(Rules.Arm64NoVma, $"no VMA at hva {c.Hva}: -EFAULT", c.Fault, c.SlotFact, new Fact("hva", c.Hva.ToString(), c.Slot.Seq));
        return c.Done(FaultOutcome.Error, Errno.EFAULT);
    }

    // A read-only memslot never logs, whatever its flags say.
    private static FaultResolved? MemslotIsLogging(Ctx c)
    {
        c.Logging = c.Slot.Logging;
        if (c.Slot.LogDirty && c.Slot.ReadOnly)
        {
            c.Why.Add(Rules.Arm64MemslotIsLogging, "KVM_MEM_LOG_DIRTY_PAGES on a KVM_MEM_READONLY slot: a read-only slot is never logging, so it keeps its blocks", Facts.SlotFlags(c.Slot));
        }

        return null;
    }

    private static FaultResolved? LoggingForcePte(Ctx c)
    {
        if (c.Logging)
        {
            c.Size = P4K;
            c.ForcePte = true;
            c.Why.Add(LoggingForcePteMemo, Rules.Arm64LoggingForcePte, "dirty logging is on: 4K pages only (force_pte)", Facts.SlotFlags(c.Slot));
        }

        return null;
    }

    private static FaultResolved? PkvmPageSize(Ctx c)
    {
        if (!c.ForcePte && c.S.VmType == VmType.Protected)
        {
            c.Size = P4K;
            c.ForcePte = true;
            c.Why.Add(Rules.Arm64PkvmPageSize, "protected VM (pKVM) before 6.16: 4K pages only (force_pte)", Facts.VmType(c.S), Facts.Policy(c.S));
        }

        return null;
    }

    private static FaultResolved? Hwpoison(Ctx c)
    {
        if (!c.S.Poisoned.TryFind(c.Hva.Value, out var poison))
        {
            return null;
        }

        c.Why.Add(Rules.Arm64Hwpoison, $"the host page at {c.Hva} is hardware-poisoned: SIGBUS to the VMM", c.Fault, new Fact("madvise", "MADV_HWPOISON", poison.Value));
        return c.Done(FaultOutcome.Sigbus);
    }

    // A write pins the page writable (the VMA must allow it); a read gets W when the host pte already is writable.
    private static FaultResolved? HostWritable(Ctx c)
    {
        var vma = c.Vma;
        var pfnmap = vma.IsPfnOrMixedMap;
        if (c.Write)
        {
            var vmaWritable = (vma.Prot & Perms.W) != 0 && (!pfnmap || (vma.Flags & VmaFlags.VM_SHARED) != 0);
            if (!vmaWritable)
            {
                c.Why.Add(Rules.Arm64HostWritable, pfnmap && (vma.Prot & Perms.W) != 0
                    ? "write fault on a MAP_PRIVATE PFNMAP: its ptes are read-only, the pfn lookup fails with -EFAULT"
                    : "write fault on a VMA without write permission: -EFAULT", c.Fault, c.VmaFact, Facts.VmaProt(vma), Facts.VmaFlags(vma));
                return c.Done(FaultOutcome.Error, Errno.EFAULT);
            }

            c.Writable = true;
            c.Why.Add(Rules.Arm64HostWritable, "write fault: the host page is pinned writable", c.Fault, Facts.VmaProt(vma));
        }
        else
        {
            c.Writable = ReadGetsWritable(c.S, vma, c.Hva, out var why, out var fact);
            c.Why.Add(Rules.Arm64HostWritable, (c.Exec ? ExecFaultTexts : ReadFaultTexts).GetOrAdd(why, static (w, exec) => (exec ? "exec fault: " : "read fault: ") + w, c.Exec), c.Fault, fact);
        }

        if (c.Slot.ReadOnly)
        {
            c.Writable = false;
        }

        return null;
    }

    // Logging maps read faults read-only, except device memory: kvm_is_device_pfn before 6.17, a
    // PFNMAP/MIXEDMAP pfn outside the linear map from 6.17.
    private static FaultResolved? DirtyLogReadOnly(Ctx c)
    {
        if (!c.Logging || c.Write)
        {
            return null;
        }

        var exempt = c.S.Policy.Holds(Rules.Arm64ForceNonCacheable) ? c.Vma.IsPfnOrMixedMap && !c.Vma.LinearMap : c.Device;
        if (exempt)
        {
            c.Why.Add(Rules.Arm64DirtyLogReadOnly, "dirty logging is on, but device memory is not write-protected for logging: writability kept", Facts.SlotFlags(c.Slot), Facts.VmaFlags(c.Vma), Facts.LinearMap(c.Vma));
            return null;
        }

        c.Writable = false;
        c.Why.Add(Rules.Arm64DirtyLogReadOnly, "dirty logging is on and this is not a write: mapped read-only so the first write is logged", Facts.SlotFlags(c.Slot));
        return null;
    }

    private static FaultResolved? ExecNonCacheable(Ctx c)
    {
        if (!c.Exec || !c.Device)
        {
            return null;
        }

        c.Why.Add(Rules.Arm64ExecNonCacheable, "instruction fetch from device (non-cacheable) memory: -ENOEXEC, an instruction abort is injected", c.Fault, Facts.VmaFlags(c.Vma), Facts.VmaMemType(c.Vma));
        return c.Done(FaultOutcome.InjectIabt, Errno.ENOEXEC);
    }

    // 5.14 - 6.1: a VM_SHARED VMA (mapped after the memslot check) is refused; otherwise sanitise_mte_tags,
    // which refuses a pfn that cannot hold tags (no online struct page). Private VMAs need no VM_MTE_ALLOWED.
    private static FaultResolved? MteBefore62(Ctx c)
    {
        if (!c.S.MteEnabled || c.Device || c.IsPermission)
        {
            return null;
        }

        var mteFact = new Fact("vm.cap", "KVM_CAP_ARM_MTE", c.S.MteSeq);
        if ((c.Vma.Flags & VmaFlags.VM_SHARED) != 0)
        {
            c.Why.Add(Rules.Arm64MteSharedAtFault, "MTE is enabled and the VMA is VM_SHARED (before 6.2): -EFAULT", mteFact, Facts.VmaFlags(c.Vma));
            return c.Done(FaultOutcome.Error, Errno.EFAULT);
        }

        if (!c.Vma.StructPage)
        {
            c.Why.Add(Rules.Arm64MteSharedAtFault, "MTE is enabled and the pfn has no online struct page to hold tags: -EFAULT", mteFact, Facts.StructPage(c.Vma));
            return c.Done(FaultOutcome.Error, Errno.EFAULT);
        }

        c.Why.Add(Rules.Arm64MteSharedAtFault, "MTE is enabled: the page's tags are sanitised before mapping", mteFact, Facts.VmaFlags(c.Vma));
        return null;
    }

    // 6.2+: a VMA without VM_MTE_ALLOWED cannot be mapped into an MTE VM.
    private static FaultResolved? Mte(Ctx c)
    {
        if (!c.S.MteEnabled || c.Device || c.IsPermission)
        {
            return null;
        }

        var mteFact = new Fact("vm.cap", "KVM_CAP_ARM_MTE", c.S.MteSeq);
        if ((c.Vma.Flags & VmaFlags.VM_MTE_ALLOWED) == 0)
        {
            c.Why.Add(Rules.Arm64Mte, "MTE is enabled for the VM and the VMA lacks VM_MTE_ALLOWED: -EFAULT", mteFact, Facts.VmaFlags(c.Vma));
            return c.Done(FaultOutcome.Error, Errno.EFAULT);
        }

        c.Why.Add(Rules.Arm64Mte, "MTE is enabled: the page's tags are sanitised before mapping", mteFact, Facts.VmaFlags(c.Vma));
        return null;
    }

    private static FaultResolved? AllowAnyUncached(Ctx c)
    {
        if (c.Device && (c.Vma.Flags & VmaFlags.VM_ALLOW_ANY_UNCACHED) != 0)
        {
            c.MemType = Stage2MemType.NormalNC;
            c.Why.Add(AllowAnyUncachedMemo, Rules.Arm64AllowAnyUncached, "device memory in a VM_ALLOW_ANY_UNCACHED VMA (vfio-pci sets it): Normal-NC instead of Device", Facts.VmaFlags(c.Vma), Facts.Policy(c.S));
        }

        return null;
    }

    private static FaultResolved? Prot(Ctx c)
    {
        var perms = Perms.R | (c.Writable ? Perms.W : 0) | (c.Exec ? Perms.X : 0);
        if (c.Device)
        {
            c.MemType = c.MemType == Stage2MemType.NormalNC ? Stage2MemType.NormalNC : Stage2MemType.Device;
            c.Perms = perms;
            c.Why.Add(ProtMemo, Rules.Arm64Prot, Fmt.Cached("prot.noncacheable", (c.MemType, perms), static k => k.MemType == Stage2MemType.NormalNC
                ? $"non-cacheable: Normal-NC, {Fmt.Perms(k.perms)}"
                : $"non-cacheable: Device-nGnRE, {Fmt.Perms(k.perms)}"), Facts.VmaFlags(c.Vma), Facts.Policy(c.S));
            return null;
        }

        var dic = c.S.Host?.Caps.CacheDic == true;
        var fwb = c.S.Host?.Caps.Fwb == true;
        c.MemType = Stage2MemType.Normal;
        c.Perms = perms | (dic ? Perms.X : 0);
        c.Why.Add(ProtMemo, Rules.Arm64Prot, Fmt.Cached("prot.normal", (fwb, dic, c.Perms), static k => $"cacheable: Normal ({(k.fwb ? "FWB forces write-back whatever the guest's stage-1 says" : "without FWB the guest's stage-1 can weaken it")}){(k.dic ? ", executable up front since CTR_EL0.DIC" : "")}: {Fmt.Perms(k.Item3)}"),
            c.S.FwbFact, c.S.DicFact);
        return null;
    }

    // A permission fault on an entry of the mapping's size only relaxes its permissions.
    private static FaultResolved? RelaxPerms(Ctx c)
    {
        if (!c.IsPermission || !c.S.Stage2.TryFind(c.F.Gpa.Value, out var cur))
        {
            return null;
        }

        var granule = c.F.Granule ?? cur.Value.Granule;
        if (granule != c.Size)
        {
            return null;
        }

        var relaxed = cur.Value.Perms | c.Perms;
        c.Why.Add(Rules.Arm64RelaxPerms, Fmt.Cached("relax", (granule, relaxed), static k => $"permission fault on a {Fmt.Size(k.granule)} entry of the same size: permissions relaxed to {Fmt.Perms(k.relaxed)}, attributes kept"),
            c.Fault, EntryFact(cur.Value));
        return c.Done(FaultOutcome.Relaxed, 0, new Mapping(c.F.Gpa.AlignDown(granule), granule, cur.Value.MemType, null, relaxed));
    }

    // The stage-2 entry a rule found, as its facts cite it ("Normal 2M r-x", set by the decision at its seq).
    private static Fact EntryFact(S2Entry e) => new("stage2.entry", Fmt.Shape(e.MemType, e.Granule, null, e.Perms), e.DecidedSeq);

    // stage2_map_walker_try_leaf: a translation fault that would write the leaf already there (same
    // output and attributes, whatever the permissions) returns -EAGAIN and leaves it.
    private static FaultResolved? SameLeaf(Ctx c)
    {
        var ipa = c.F.Gpa.AlignDown(c.Size);
        if (c.F.Kind != FaultKind.Translation || !c.S.Stage2.TryFind(ipa.Value, out var held)
            || held.Start > ipa.Value || held.End < ipa.Value + c.Size || held.Value.Granule != c.Size || held.Value.MemType != c.MemType)
        {
            return null;
        }

        var h = held.Value;
        c.Why.Add(Rules.Arm64SameLeafStands, Fmt.Cached("same-leaf", (h.Granule, h.Perms), static k => $"the {Fmt.Size(k.Granule)} leaf already there has the same output and attributes: the walker leaves it (-EAGAIN), {Fmt.Perms(k.Perms)} kept"),
            EntryFact(h));
        return c.Done(FaultOutcome.Kept, 0, new Mapping(ipa, c.Size, h.MemType, null, h.Perms));
    }

    // stage2_map_walk_leaf: mapping a page inside an existing block replaces the block with a table
    // holding only the new page; the rest of the block is faulted back lazily.
    private static FaultResolved? BreakBlock(Ctx c)
    {
        var ipa = c.F.Gpa.AlignDown(c.Size);
        if (!c.S.Stage2.TryFind(ipa.Value, out var held) || held.Value.Granule <= c.Size)
        {
            return null;
        }

        var block = c.F.Gpa.AlignDown(held.Value.Granule);
        var rest = new List<Addresses.GpaRange>();
        if (ipa.Value > block.Value)
        {
            rest.Add(new Addresses.GpaRange(block, ipa));
        }

        var after = ipa.Value + c.Size;
        if (after < block.Value + held.Value.Granule)
        {
            rest.Add(new Addresses.GpaRange(new Addresses.Gpa(after), new Addresses.Gpa(block.Value + held.Value.Granule)));
        }

        c.Emit(new Stage2Unmapped(c.Seq, ValueList<Addresses.GpaRange>.Own([.. rest]), Rules.Arm64BreakBlock.Id));
        c.Why.Add(Rules.Arm64BreakBlock, $"a {Fmt.Size(c.Size)} page inside the {Fmt.Size(held.Value.Granule)} block at {block}: the block is replaced by a table, the rest of it is unmapped and faulted back lazily",
            EntryFact(held.Value));
        return null;
    }

    private static FaultResolved? Map(Ctx c)
    {
        var mapping = new Mapping(c.F.Gpa.AlignDown(c.Size), c.Size, c.MemType, null, c.Perms);
        c.Why.Add(MapMemo, Rules.Arm64Map, Fmt.Cached("map", (c.MemType, c.Size, c.Perms), static k => $"maps {Fmt.Shape(k.MemType, k.Size, null, k.Perms)}"), c.SlotFact, c.VmaFact);
        return c.Done(FaultOutcome.Mapped, 0, mapping);
    }

    internal static ulong AlignUp(ulong v, ulong size) => (v + size - 1) & ~(size - 1);

    internal static bool IsContPte(ulong size) => size == P64K;

    internal static bool IsContPmd(ulong size) => size == P32M;
}

/// <summary>The arm64 fault's rules in the order the engine walks them (for docs, tests and bisect).</summary>
public static class Arm64FaultChain
{
    public static IReadOnlyList<Rule> Rules { get; } = Arm64Fault.Chain.Steps.Select(s => s.Rule).ToList();
}
