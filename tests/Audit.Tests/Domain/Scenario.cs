using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Tests.Domain;

/// <summary>Given/When/Then over the pure engine: each call steps one input event and returns its derived events.</summary>
public sealed class Scenario
{
    public const ulong K4 = 0x1000, M2 = 0x200000, G1 = 0x40000000;

    private long _seq;

    public Scenario(Policy policy) => State = Engine.Start(policy);

    public RunState State { get; }

    public List<(long Seq, InputEvent Input, IReadOnlyList<DerivedEvent> Derived)> Log { get; } = [];

    public static Scenario Arm64(string kernel = "6.17.2", bool fwb = true, bool dic = true, string? policy = null, int ipaBits = 48, VmType vm = VmType.Default)
    {
        var host = new HostDescribed(Arch.Arm64, kernel, null, 4096, new HostCaps(Fwb: fwb, CacheDic: dic));
        var s = new Scenario(policy is null ? Policies.DefaultFor(host) : Policies.Find(policy)!);
        s.Do(host);
        s.Do(new VmCreated(vm, ipaBits));
        return s;
    }

    public static Scenario X86(string kernel = "6.16.1", X86Vendor vendor = X86Vendor.Intel, VmType vm = VmType.Default, bool tdp = true, bool selfSnoop = true, string? policy = null)
    {
        var host = new HostDescribed(Arch.X86_64, kernel, vendor, 4096, new HostCaps(SelfSnoop: selfSnoop, Tdp: tdp, TdpMmu: tdp));
        var s = new Scenario(policy is null ? Policies.DefaultFor(host) : Policies.Find(policy)!);
        s.Do(host);
        s.Do(new VmCreated(vm, null));
        return s;
    }

    public long LastSeq => _seq;

    public IReadOnlyList<DerivedEvent> Do(InputEvent e)
    {
        var seq = ++_seq;
        var derived = Engine.Step(State, seq, e);
        _seq += derived.Count;
        Log.Add((seq, e, derived));
        return derived;
    }

    public long Vma(ulong start, ulong length, VmaFlags flags, HostMemType? memType, Backing backing, string prot = "rw-")
    {
        Do(new VmaMapped(HvaRange.FromSize(new Hva(start), length), ParsePerms(prot), flags, memType, backing));
        return _seq;
    }

    public MemslotDecided Slot(int slot, ulong gpa, ulong size, ulong hva, MemslotFlags flags = MemslotFlags.None, int? gmem = null, ulong? gmemOffset = null, int asId = 0) =>
        Do(new MemslotSet(slot, asId, new Gpa(gpa), size, new Hva(hva), flags, gmem, gmemOffset, null)).OfType<MemslotDecided>().Single();

    public FaultResolved Fault(ulong gpa, Access access = Access.Read, FaultKind kind = FaultKind.Translation, bool? isPrivate = null, bool s1ptw = false, bool cm = false, ulong? granule = null) =>
        Do(new GuestFaulted(0, new Gpa(gpa), access, kind, isPrivate, s1ptw, cm, granule)).OfType<FaultResolved>().Single();

    public IReadOnlyList<GpaRange> Unmapped(IReadOnlyList<DerivedEvent> derived) =>
        derived.OfType<Stage2Unmapped>().SelectMany(u => u.Ranges).ToList();

    public S2Entry? EntryAt(ulong gpa) => State.Stage2.TryFind(gpa, out var i) ? i.Value : null;

    public static Perms ParsePerms(string s) =>
        (s[0] == 'r' ? Perms.R : 0) | (s[1] == 'w' ? Perms.W : 0) | (s[2] == 'x' ? Perms.X : 0);

    // Common host mappings.
    public static Backing Anon(bool thp = false) => new(BackingKind.Anon, LinearMap: true, StructPage: true, HostPageSize: 4096, Thp: thp);

    public static Backing Hugetlb(ulong pageSize) => new(BackingKind.Hugetlb, LinearMap: true, StructPage: true, HostPageSize: pageSize);

    public static Backing Vfio(ulong pfn, ulong? pgoff = null) => new(BackingKind.Vfio, "/dev/vfio/1", pfn, pgoff, LinearMap: false, StructPage: false, HostPageSize: 4096);

    public const VmaFlags BarFlags = VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP | VmaFlags.VM_ALLOW_ANY_UNCACHED;
    public const VmaFlags PfnFlags = VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP;
}

public static class ExplanationAssert
{
    /// <summary>The explanation names the rule, and every fact it cites with a seq points at an earlier event.</summary>
    public static void Cites(ValueList<ExplanationStep> steps, Rule rule, long atSeq)
    {
        Assert.Contains(steps, s => s.Rule == rule.Id);
        Assert.All(steps.SelectMany(s => s.Facts), f => Assert.True(f.Seq is null || (f.Seq >= 1 && f.Seq <= atSeq), $"fact {f.Name} cites seq {f.Seq} at {atSeq}"));
    }
}
