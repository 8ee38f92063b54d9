using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>
/// x86 TDP (EPT/NPT) and shadow faults as data: kvm_mmu_faultin_pfn, kvm_mmu_hugepage_adjust
/// (arch/x86/kvm/mmu/mmu.c), kvm_is_mmio_pfn and make_spte (spte.c), vmx_get_mt_mask (vmx/vmx.c);
/// domain.md section 4. The rules that hold in the policy's release run in the kernel's order
/// (<see cref="X86FaultRules"/>); the first that returns a decision ends it.
/// </summary>
internal static class X86Fault
{
    public static FaultResolved Decide(RunState s, GuestFaulted f, long seq) => X86FaultRules.Chain.Decide(s.Policy, new X86FaultContext(s, f, seq));

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

    internal static bool MixesAttributes(RunState s, ulong start, ulong end)
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

}
