using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Memslots;

/// <summary>
/// KVM_SET_USER_MEMORY_REGION(2): kvm_set_memory_region and check_memory_region_flags
/// (virt/kvm/kvm_main.c), kvm_gmem_bind (virt/kvm/guest_memfd.c), and the arch checks of
/// kvm_arch_prepare_memory_region; domain.md sections 3, 5 and 7.
/// </summary>
internal static class MemslotDecision
{
    private const int X86UserMemSlots = 32764;
    private const int Arm64UserMemSlots = 32767;
    private const ulong MaxPages = (1UL << 31) - 1;

    /// <summary>The outcome so far of a memslot change: what kind of change, and the errno when refused.</summary>
    internal sealed record Verdict(SlotChange Change, int Errno);

    /// <summary>What kvm_set_memory_region knows while its rules run.</summary>
    internal sealed class Ctx(RunState s, MemslotSet e, long seq)
    {
        public RunState S { get; } = s;
        public MemslotSet E { get; } = e;
        public Why Why { get; } = new();
        public Fact Req { get; } = new("request", $"slot {e.Slot} as {e.AsId} gpa {e.Gpa} size {Fmt.Hex(e.Size)} hva {e.Hva} flags {Fmt.Flags(e.Flags)}", seq);
        public bool Gmem => (E.Flags & MemslotFlags.KVM_MEM_GUEST_MEMFD) != 0;
        public SlotChange Change { get; set; } = SlotChange.Create;
    }

    /// <summary>The memslot rules in the kernel's order (check_memory_region_flags first, kvm_gmem_bind last).</summary>
    private static readonly RuleChain<Ctx, Verdict> Chain = new(
    [
        new(Rules.X86SlotReadonlyProtected, ReadonlyProtected),
        new(Rules.SlotFlags, CheckFlags),
        new(Rules.SlotIds, SlotIds),
        new(Rules.SlotAlignment, Alignment),
        new(Rules.SlotChangeKind, ChangeKind),
        new(Rules.SlotOverlap, Overlap),
        new(Rules.Arm64SlotIpa, c => c.S.Arch == Arch.Arm64 && Arm64Prepare(c.S, c.E, c.Why, c.Req) is var errno and not 0 ? new Verdict(c.Change, errno) : null),
        new(Rules.X86SlotMaxGfn, MaxGfn),
        new(Rules.GmemBind, c => c.Change == SlotChange.Create && c.Gmem && Bind(c.S, c.E, c.Why, c.Req) is var errno and not 0 ? new Verdict(c.Change, errno) : null),
        new(Rules.SlotChangeKind, c => new Verdict(c.Change, 0)),
    ]);

    public static MemslotDecided Decide(RunState s, MemslotSet e, long seq)
    {
        var c = new Ctx(s, e, seq);
        var (change, errno) = Chain.Decide(s.Policy, c);
        return new MemslotDecided(seq, change, errno, e.Result, s.Policy.Id, c.Why.Build());
    }

    // kvm_arch_has_readonly_mem: VMs with protected state (SEV-ES, SEV-SNP, TDX) cannot have read-only slots.
    private static Verdict? ReadonlyProtected(Ctx c)
    {
        if (c.S.VmType is not (VmType.Snp or VmType.Tdx) || (c.E.Flags & MemslotFlags.KVM_MEM_READONLY) == 0)
        {
            return null;
        }

        c.Why.Add(Rules.X86SlotReadonlyProtected, $"KVM_MEM_READONLY on a {c.S.VmType.ToString().ToUpperInvariant()} VM, whose state is protected: read-only memory cannot be emulated, -EINVAL", c.Req, Facts.VmType(c.S), Facts.Policy(c.S));
        return new Verdict(SlotChange.Create, Errno.EINVAL);
    }

    // check_memory_region_flags: which flags this kernel and VM accept.
    private static Verdict? CheckFlags(Ctx c)
    {
        var (s, e) = (c.S, c.E);
        var valid = MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES | MemslotFlags.KVM_MEM_READONLY;
        var gmemOk = s.Arch == Arch.Arm64
            ? s.Policy.GmemAbort
            : s.Policy.Holds(Rules.GmemBind) && (s.HasPrivateMemory || s.Policy.Holds(Rules.GmemSupportedFlags));
        if (gmemOk)
        {
            valid |= MemslotFlags.KVM_MEM_GUEST_MEMFD;
        }

        if (s.Policy.WhatIf == WhatIf.MemslotFlag)
        {
            valid |= MemslotFlags.KVM_MEM_ENABLE_CACHEABLE_PFNMAP;
        }

        if (s.Policy.WhatIf == WhatIf.ForceCheck)
        {
            valid |= MemslotFlags.KVM_MEM_FORCE_CACHEABLE_PFNMAP;
        }

        if (c.Gmem)
        {
            valid &= ~(MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES | MemslotFlags.KVM_MEM_READONLY);
        }

        if ((e.Flags & ~valid) != 0)
        {
            c.Why.Add(Rules.SlotFlags, $"flags {Fmt.Flags(e.Flags & ~valid)} are not valid here (valid: {Fmt.Flags(valid)}): -EINVAL", c.Req, Facts.Policy(s), Facts.Kernel(s), Facts.VmType(s));
            return new Verdict(SlotChange.Create, Errno.EINVAL);
        }

        c.Why.Add(Rules.SlotFlags, $"flags {Fmt.Flags(e.Flags)} are valid", c.Req);
        return null;
    }

    private static Verdict? SlotIds(Ctx c)
    {
        var e = c.E;
        var maxSlots = c.S.Arch == Arch.Arm64 ? Arm64UserMemSlots : X86UserMemSlots;
        var addressSpaces = c.S.Arch == Arch.Arm64 ? 1 : 2;
        if (e.AsId < 0 || e.AsId >= addressSpaces || e.Slot < 0 || e.Slot >= maxSlots)
        {
            c.Why.Add(Rules.SlotIds, $"address space {e.AsId} or slot id {e.Slot} out of range (address spaces {addressSpaces}, slots {maxSlots}): -EINVAL", c.Req);
            return new Verdict(SlotChange.Create, Errno.EINVAL);
        }

        return null;
    }

    private static Verdict? Alignment(Ctx c)
    {
        var e = c.E;
        var page = c.S.PageSize;
        var misaligned = new List<string>();
        if ((e.Size & (page - 1)) != 0)
        {
            misaligned.Add($"size {Fmt.Hex(e.Size)}");
        }

        if ((e.Gpa.Value & (page - 1)) != 0)
        {
            misaligned.Add($"gpa {e.Gpa}");
        }

        if ((e.Hva.Value & (page - 1)) != 0)
        {
            misaligned.Add($"hva {e.Hva}");
        }

        if (c.Gmem && ((e.GuestMemfdOffset ?? 0) & (page - 1)) != 0)
        {
            misaligned.Add($"guest_memfd offset {Fmt.Hex(e.GuestMemfdOffset ?? 0)}");
        }

        if (misaligned.Count > 0)
        {
            c.Why.Add(Rules.SlotAlignment, $"{string.Join(", ", misaligned)} not aligned to the {Fmt.Size(page)} page: -EINVAL", c.Req);
            return new Verdict(SlotChange.Create, Errno.EINVAL);
        }

        if (e.Gpa.Value + e.Size < e.Gpa.Value || e.Hva.Value + e.Size < e.Hva.Value || e.Size / page > MaxPages)
        {
            c.Why.Add(Rules.SlotAlignment, "the range overflows or exceeds KVM_MEM_MAX_NR_PAGES: -EINVAL", c.Req);
            return new Verdict(SlotChange.Create, Errno.EINVAL);
        }

        c.Why.Add(Rules.SlotAlignment, $"gpa, size and hva are {Fmt.Size(page)}-aligned", c.Req);
        return null;
    }

    // Which change this is: a delete and an identical request end here.
    private static Verdict? ChangeKind(Ctx c)
    {
        var e = c.E;
        c.S.Slots.TryGetValue((e.AsId, e.Slot), out var old);
        if (e.Size == 0)
        {
            if (old is null)
            {
                c.Why.Add(Rules.SlotChangeKind, "size 0 for a slot that does not exist: -EINVAL", c.Req);
                return new Verdict(SlotChange.Delete, Errno.EINVAL);
            }

            c.Why.Add(Rules.SlotChangeKind, "size 0 deletes the slot", c.Req, Facts.Slot(old));
            return new Verdict(SlotChange.Delete, 0);
        }

        if (old is null)
        {
            c.Change = SlotChange.Create;
            c.Why.Add(Rules.SlotChangeKind, "a new slot", c.Req);
            return null;
        }

        var oldFact = Facts.Slot(old);
        if (e.Hva != old.Hva || e.Size != old.Size || ((e.Flags ^ old.Flags) & MemslotFlags.KVM_MEM_READONLY) != 0)
        {
            c.Why.Add(Rules.SlotChangeKind, "an existing slot's hva, size or READONLY flag cannot change: -EINVAL", c.Req, oldFact);
            return new Verdict(SlotChange.Create, Errno.EINVAL);
        }

        c.Change = e.Gpa != old.Gpa ? SlotChange.Move : e.Flags != old.Flags ? SlotChange.FlagsOnly : SlotChange.Noop;
        if (c.Change == SlotChange.Noop)
        {
            c.Why.Add(Rules.SlotChangeKind, "identical to the existing slot: nothing to do", c.Req, oldFact);
            return new Verdict(SlotChange.Noop, 0);
        }

        if (old.HasGmem)
        {
            c.Why.Add(Rules.SlotChangeKind, $"a guest_memfd slot cannot be {(c.Change == SlotChange.Move ? "moved" : "changed")}, only deleted: -EINVAL", c.Req, oldFact);
            return new Verdict(c.Change, Errno.EINVAL);
        }

        c.Why.Add(Rules.SlotChangeKind, c.Change == SlotChange.Move ? $"same slot at a new gpa: a move from {old.Gpa}" : $"same slot, flags {Fmt.Flags(old.Flags)} -> {Fmt.Flags(e.Flags)}: a flags-only change", c.Req, oldFact);
        return null;
    }

    // kvm_check_memslot_overlap: a create or move may not overlap another slot of its address space.
    private static Verdict? Overlap(Ctx c)
    {
        if (c.Change is not (SlotChange.Create or SlotChange.Move))
        {
            return null;
        }

        var e = c.E;
        var clash = c.S.SlotMap(e.AsId).Overlapping(e.Gpa.Value, e.Gpa.Value + e.Size).Select(i => i.Value).FirstOrDefault(o => o.Slot != e.Slot);
        if (clash is null)
        {
            return null;
        }

        c.Why.Add(Rules.SlotOverlap, $"overlaps slot {clash.Slot}: -EEXIST", c.Req, Facts.Slot(clash));
        return new Verdict(c.Change, Errno.EEXIST);
    }

    private static Verdict? MaxGfn(Ctx c)
    {
        if (c.Change is not (SlotChange.Create or SlotChange.Move) || c.E.Gpa.Value + c.E.Size <= 1UL << 52)
        {
            return null;
        }

        c.Why.Add(Rules.X86SlotMaxGfn, "the slot ends beyond the largest gfn the MMU can map: -EINVAL", c.Req);
        return new Verdict(c.Change, Errno.EINVAL);
    }

    /// <summary>kvm_gmem_bind: the file exists, the offset range fits and is not bound yet.</summary>
    private static int Bind(RunState s, MemslotSet e, Why why, Fact req)
    {
        if (e.GuestMemfd is not { } fd || !s.Gmem.TryGetValue(fd, out var g) || g.ClosedSeq is not null)
        {
            why.Add(Rules.GmemBind, $"guest_memfd fd {e.GuestMemfd?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"} is not an open guest_memfd: -EBADF", req);
            return Errno.EBADF;
        }

        var gFact = new Fact("guest_memfd", $"fd {fd} size {Fmt.Hex(g.Size)} flags {Fmt.Flags(g.Flags)}", g.Seq);
        var offset = e.GuestMemfdOffset ?? 0;
        if (offset + e.Size > g.Size || offset + e.Size < offset)
        {
            why.Add(Rules.GmemBind, $"offset {Fmt.Hex(offset)} + size {Fmt.Hex(e.Size)} runs past the guest_memfd's {Fmt.Hex(g.Size)}: -EINVAL", req, gFact);
            return Errno.EINVAL;
        }

        if (g.Bindings.AnyOverlap(offset, offset + e.Size))
        {
            var other = g.Bindings.Overlapping(offset, offset + e.Size)[0].Value;
            why.Add(Rules.GmemBind, $"that guest_memfd range is already bound to slot {other.Slot}: -EINVAL", req, gFact);
            return Errno.EINVAL;
        }

        why.Add(Rules.GmemBind, $"binds guest_memfd fd {fd} [{Fmt.Hex(offset)}, {Fmt.Hex(offset + e.Size)})", req, gFact);
        return 0;
    }

    /// <summary>kvm_arch_prepare_memory_region (arm64): IPA size, guest_memfd MMAP, and a walk over the VMAs of the hva range.</summary>
    private static int Arm64Prepare(RunState s, MemslotSet e, Why why, Fact req)
    {
        var ipaBits = s.Vm?.IpaBits ?? 40;
        if (ipaBits < 64 && e.Gpa.Value + e.Size > 1UL << ipaBits)
        {
            why.Add(Rules.Arm64SlotIpa, $"the slot ends beyond the VM's {ipaBits}-bit IPA space: -EFAULT", req, new Fact("vm.ipaBits", ipaBits.ToString(System.Globalization.CultureInfo.InvariantCulture), s.VmSeq));
            return Errno.EFAULT;
        }

        if ((e.Flags & MemslotFlags.KVM_MEM_GUEST_MEMFD) != 0)
        {
            if (e.GuestMemfd is { } fd && s.Gmem.TryGetValue(fd, out var g) && (g.Flags & GuestMemfdFlags.MMAP) == 0)
            {
                why.Add(Rules.Arm64SlotGmemMmap, "arm64 needs a guest_memfd created with GUEST_MEMFD_FLAG_MMAP: -EINVAL", req, new Fact("guest_memfd", $"fd {fd} flags {Fmt.Flags(g.Flags)}", g.Seq));
                return Errno.EINVAL;
            }
        }

        var fwb = s.Host?.Caps.Fwb == true;
        var dic = s.Host?.Caps.CacheDic == true;
        var oldMteRule = !s.Policy.MteCheckedAtMemslot;
        foreach (var i in s.Vmas.Overlapping(e.Hva.Value, e.Hva.Value + e.Size))
        {
            var vma = i.Value;
            var vmaFacts = new[] { req, Facts.Vma(vma), Facts.VmaFlags(vma) };
            if (s.MteEnabled)
            {
                var mte = new Fact("vm.cap", "KVM_CAP_ARM_MTE", s.MteSeq);
                if (!oldMteRule && (vma.Flags & VmaFlags.VM_MTE_ALLOWED) == 0)
                {
                    why.Add(Rules.Arm64SlotMte, "MTE is enabled and a VMA in the range lacks VM_MTE_ALLOWED: -EINVAL", [.. vmaFacts, mte]);
                    return Errno.EINVAL;
                }

                if (oldMteRule && (vma.Flags & VmaFlags.VM_SHARED) != 0)
                {
                    why.Add(Rules.Arm64SlotMteShared, "MTE is enabled and a VMA in the range is VM_SHARED (before 6.2): -EINVAL", [.. vmaFacts, mte, Facts.Policy(s)]);
                    return Errno.EINVAL;
                }
            }

            var pfnmap = (vma.Flags & VmaFlags.VM_PFNMAP) != 0;
            if (pfnmap && (e.Flags & MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES) != 0)
            {
                why.Add(Rules.Arm64SlotPfnmapLog, "a VM_PFNMAP VMA cannot be dirty-logged: -EINVAL", [.. vmaFacts, new Fact("request.flags", Fmt.Flags(e.Flags), req.Seq)]);
                return Errno.EINVAL;
            }

            if (!pfnmap || s.Policy.Cacheability != Arm64Cacheability.CacheablePfnmap)
            {
                continue;
            }

            var memType = Facts.VmaMemType(vma);
            switch (s.Policy.WhatIf)
            {
                case WhatIf.ForceCheck:
                {
                    var force = (e.Flags & MemslotFlags.KVM_MEM_FORCE_CACHEABLE_PFNMAP) != 0;
                    if (!vma.Cacheable == force)
                    {
                        why.Add(Rules.WhatIfForceCheck, force
                            ? "FORCE_CACHEABLE_PFNMAP on a VMA whose pgprot is non-cacheable: -EINVAL"
                            : "a cacheable PFNMAP VMA without FORCE_CACHEABLE_PFNMAP: -EINVAL", [.. vmaFacts, memType]);
                        return Errno.EINVAL;
                    }

                    break;
                }

                case WhatIf.MemslotFlag when vma.Cacheable && (e.Flags & MemslotFlags.KVM_MEM_ENABLE_CACHEABLE_PFNMAP) == 0:
                    why.Add(Rules.WhatIfMemslotFlag, "a cacheable PFNMAP VMA in a memslot without KVM_MEM_ENABLE_CACHEABLE_PFNMAP: -EINVAL", [.. vmaFacts, memType]);
                    return Errno.EINVAL;
            }

            if (vma.Cacheable && !(fwb && dic))
            {
                why.Add(Rules.Arm64SlotCacheablePfnmap, "a VM_PFNMAP VMA with a cacheable pgprot, and the host lacks FWB or DIC: -EINVAL (whatever the pfns are)",
                    [.. vmaFacts, memType, Facts.Cap(s, "fwb", s.Host?.Caps.Fwb), Facts.Cap(s, "cacheDic", s.Host?.Caps.CacheDic)]);
                return Errno.EINVAL;
            }
        }

        why.Add(Rules.Arm64SlotIpa, "the VMAs of the hva range pass the arm64 checks", req);
        return 0;
    }
}
