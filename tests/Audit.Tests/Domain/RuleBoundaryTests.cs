using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>
/// Every rule bounded by a release is tested at each boundary it claims: it fires in the first release it
/// holds in and not in the one before; it fires in its last release and not in the next. Each case is a
/// run that reaches the rule (named after the kernel behaviour it shows); a rule added with a range but no
/// case here fails <see cref="Every_bounded_rule_has_a_boundary_case"/>.
/// </summary>
public sealed class RuleBoundaryTests
{
    private const ulong Ram = 0xffff00000000, Gpa = 0x40000000;

    /// <summary>The rules a run fired: explanation steps, and the rules carried on unmaps and write-protects.</summary>
    private static HashSet<string> Fired(Scenario s) =>
        s.Log.SelectMany(l => l.Derived).SelectMany(d => d switch
        {
            FaultResolved f => f.Explanation.Select(x => x.Rule),
            MemslotDecided m => m.Explanation.Select(x => x.Rule),
            IoctlDecided i => i.Explanation.Select(x => x.Rule),
            Stage2Unmapped u when u.Rule is { } r => [r],
            Stage2WriteProtected w when w.Rule is { } r => [r],
            _ => [],
        }).ToHashSet();

    private static Scenario ArmRam(string v, VmaFlags flags = VmaFlags.None, MemslotFlags slotFlags = MemslotFlags.None, VmType vm = VmType.Default, Backing? backing = null)
    {
        var s = Arm64(v, vm: vm);
        s.Vma(Ram, 0x400000, flags, HostMemType.MT_NORMAL, backing ?? Anon());
        s.Slot(0, Gpa, 0x400000, Ram, slotFlags);
        return s;
    }

    private static Scenario ArmBar(string v, bool fwb = true, VmaFlags flags = BarFlags, HostMemType memType = HostMemType.MT_DEVICE_nGnRnE)
    {
        var s = Arm64(v, fwb: fwb);
        s.Vma(0xfffd00000000, 0x1000000, flags, memType, Vfio(0x2000000));
        s.Slot(2, 0x10000000, 0x1000000, 0xfffd00000000);
        return s;
    }

    private static Scenario Snp(string v)
    {
        var s = X86(v, X86Vendor.Amd, VmType.Snp);
        s.Do(new GuestMemfdCreated(11, 0x400000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x400000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        return s;
    }

    private static Scenario X86Ram(string v, X86Vendor vendor = X86Vendor.Intel, bool selfSnoop = false)
    {
        var s = X86(v, vendor, selfSnoop: selfSnoop);
        s.Vma(0x7f0000000000, 0x400000, VmaFlags.None, HostMemType.WB, Anon());
        s.Slot(0, 0x0, 0x400000, 0x7f0000000000);
        return s;
    }

    private static Scenario Mte(string v, VmaFlags flags)
    {
        var s = Arm64(v);
        s.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", ValueList<CapArg>.Empty));
        s.Vma(Ram, 0x400000, flags, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, Gpa, 0x400000, Ram);
        s.Fault(Gpa, Access.Write);
        return s;
    }

    /// <summary>A run that reaches each bounded rule, given the release to run under.</summary>
    private static readonly Dictionary<string, Func<string, Scenario>> Cases = new()
    {
        // An S1PTW translation fault on a read-only slot: a write before 6.2 (abort injected), a read after (mapped RO).
        [Rules.Arm64S1ptwWrite.Id] = v => Tap(ArmRam(v, slotFlags: MemslotFlags.KVM_MEM_READONLY), s => s.Fault(Gpa, Access.Read, s1ptw: true)),
        [Rules.Arm64S1ptwPermission.Id] = v => Tap(ArmRam(v, slotFlags: MemslotFlags.KVM_MEM_READONLY), s => s.Fault(Gpa, Access.Read, s1ptw: true)),
        [Rules.Arm64IpaRange.Id] = v => Tap(Arm64(v, ipaBits: 40), s => s.Fault(1UL << 41, Access.Read)),
        [Rules.Arm64GmemAbort.Id] = v => Tap(Arm64(v), s =>
        {
            s.Do(new GuestMemfdCreated(7, 0x200000, GuestMemfdFlags.MMAP, null));
            s.Slot(3, 0x80000000, 0x200000, 0xfffc00000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0);
            s.Fault(0x80000000, Access.Write);
        }),
        [Rules.Arm64PermNotWriteExec.Id] = v => Tap(ArmRam(v), s => s.Fault(Gpa, Access.Read, FaultKind.Permission, granule: K4)),
        [Rules.Arm64PkvmPageSize.Id] = v => Tap(ArmRam(v, vm: VmType.Protected, backing: Hugetlb(M2)), s => s.Fault(Gpa, Access.Write)),
        [Rules.Arm64VmaShift.Id] = v => Tap(ArmRam(v), s => s.Fault(Gpa, Access.Write)),
        [Rules.Arm64VmaPageShift.Id] = v => Tap(ArmRam(v), s => s.Fault(Gpa, Access.Write)),
        [Rules.Arm64PfnValid.Id] = v => Tap(ArmBar(v), s => s.Fault(0x10000040, Access.Write)),
        [Rules.Arm64LinearMap.Id] = v => Tap(ArmBar(v), s => s.Fault(0x10000040, Access.Write)),
        [Rules.Arm64ForceNonCacheable.Id] = v => Tap(ArmBar(v), s => s.Fault(0x10000040, Access.Write)),
        [Rules.Arm64AllowAnyUncached.Id] = v => Tap(ArmBar(v), s => s.Fault(0x10000040, Access.Write)),
        [Rules.Arm64CacheablePfnmap.Id] = v => Tap(ArmBar(v, flags: PfnFlags, memType: HostMemType.MT_NORMAL), s => s.Fault(0x10000040, Access.Write)),
        [Rules.Arm64MteSharedAtFault.Id] = v => Mte(v, VmaFlags.VM_MTE_ALLOWED),
        [Rules.Arm64Mte.Id] = v => Mte(v, VmaFlags.VM_MTE_ALLOWED),
        [Rules.Arm64SlotMteShared.Id] = v => Mte(v, VmaFlags.VM_SHARED),
        [Rules.Arm64SlotMte.Id] = v => Mte(v, VmaFlags.VM_SHARED),
        [Rules.Arm64SlotGmemMmap.Id] = v => Tap(Arm64(v), s =>
        {
            s.Do(new GuestMemfdCreated(7, 0x200000, GuestMemfdFlags.INIT_SHARED, null));
            s.Slot(3, 0x80000000, 0x200000, 0xfffc00000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0);
        }),
        [Rules.Arm64SlotCacheablePfnmap.Id] = v => ArmBar(v, fwb: false, flags: PfnFlags, memType: HostMemType.MT_NORMAL),

        // x86: private/shared mismatch (6.8; above the slot checks from 6.10), guest_memfd faults, attributes.
        [Rules.X86PrivateMismatchAfterSlot.Id] = v => Tap(Snp(v), s => s.Fault(0x1000, Access.Write, isPrivate: true)),
        [Rules.X86PrivateMismatch.Id] = v => Tap(Snp(v), s => s.Fault(0x1000, Access.Write, isPrivate: true)),
        [Rules.X86Gmem.Id] = v => Tap(Snp(v), s =>
        {
            s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null));
            s.Fault(0x1000, Access.Write, isPrivate: true);
        }),
        [Rules.GmemFreshFolio.Id] = v => Tap(Snp(v), s =>
        {
            s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null));
            s.Fault(0x1000, Access.Write, isPrivate: true);
            s.Do(new GuestMemfdFallocated(11, 0x0, 0x200000, true));
            s.Fault(0x1000, Access.Write, isPrivate: true);
        }),
        [Rules.GmemInvalidate.Id] = v => Tap(Snp(v), s =>
        {
            s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null));
            s.Fault(0x1000, Access.Write, isPrivate: true);
            s.Do(new GuestMemfdFallocated(11, 0x0, 0x200000, true));
        }),
        [Rules.Attributes.Id] = v => Tap(Snp(v), s => s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null))),
        [Rules.AttributeZap.Id] = v => Tap(Snp(v), s =>
        {
            s.Fault(0x1000, Access.Write, isPrivate: false);
            s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null));
        }),
        [Rules.GmemBind.Id] = Snp,
        [Rules.GmemCreate.Id] = Snp,
        [Rules.GmemSupportedFlags.Id] = Snp,

        // x86 memory types by release.
        [Rules.X86VmxGuestMtrr.Id] = v => Tap(X86Ram(v), s => s.Fault(0x1000, Access.Write)),
        [Rules.X86VmxGuestPat.Id] = v => Tap(X86Ram(v), s => s.Fault(0x1000, Access.Write)),
        [Rules.X86VmxSelfSnoop.Id] = v => Tap(X86Ram(v, selfSnoop: true), s => s.Fault(0x1000, Access.Write)),
        [Rules.X86VmxIgnoreGuestPatQuirk.Id] = v => Tap(X86Ram(v), s => s.Fault(0x1000, Access.Write)),
        [Rules.X86SlotReadonlyProtected.Id] = v => Tap(X86(v, X86Vendor.Amd, VmType.Snp), s =>
        {
            s.Vma(0x7f0000000000, 0x400000, VmaFlags.None, HostMemType.WB, Anon());
            s.Slot(0, 0x0, 0x400000, 0x7f0000000000, MemslotFlags.KVM_MEM_READONLY);
        }),
        [Rules.X86ZapAllFast.Id] = v => Tap(X86Ram(v), s =>
        {
            s.Fault(0x1000, Access.Write);
            s.Slot(0, 0x0, 0, 0x7f0000000000);
        }),
        [Rules.X86SlotZapAllQuirk.Id] = v => Tap(X86Ram(v), s =>
        {
            s.Fault(0x1000, Access.Write);
            s.Slot(0, 0x0, 0, 0x7f0000000000);
        }),
        [Rules.NoncoherentDmaZap.Id] = v => Tap(X86Ram(v), s =>
        {
            s.Fault(0x1000, Access.Write);
            s.Do(new NoncoherentDmaChanged(true, "0000:01:00.0"));
        }),
    };

    private static Scenario Tap(Scenario s, Action<Scenario> act)
    {
        act(s);
        return s;
    }

    private static bool FiresIn(Rule rule, KernelVersion v) => Fired(Cases[rule.Id](v + ".0")).Contains(rule.Id);

    public static TheoryData<string> Bounded() => new(Rules.All.Where(r => r.Since is not null || r.Until is not null).Select(r => r.Id));

    [Theory]
    [MemberData(nameof(Bounded))]
    public void A_bounded_rule_fires_from_its_first_release_and_not_the_one_before(string id)
    {
        var rule = Rules.Find(id)!;
        if (rule.Since is not { } since)
        {
            return;
        }

        Assert.True(FiresIn(rule, since), $"{id} fires in {since}");
        if (since > KernelVersion.Oldest)
        {
            Assert.False(FiresIn(rule, since.Previous), $"{id} does not fire in {since.Previous}");
        }
    }

    [Theory]
    [MemberData(nameof(Bounded))]
    public void A_bounded_rule_fires_in_its_last_release_and_not_the_next(string id)
    {
        var rule = Rules.Find(id)!;
        if (rule.Until is not { } until)
        {
            return;
        }

        Assert.True(FiresIn(rule, until.Previous), $"{id} fires in {until.Previous}");
        if (until <= KernelVersion.Newest)
        {
            Assert.False(FiresIn(rule, until), $"{id} does not fire in {until}");
        }
    }

    [Fact]
    public void Every_bounded_rule_has_a_boundary_case()
    {
        var missing = Rules.All.Where(r => (r.Since is not null || r.Until is not null) && !Cases.ContainsKey(r.Id)).Select(r => r.Id).ToList();
        Assert.True(missing.Count == 0, "no boundary case for: " + string.Join(", ", missing));
    }
}
