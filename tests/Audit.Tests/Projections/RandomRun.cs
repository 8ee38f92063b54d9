using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Tests.Projections;

/// <summary>Seeded random runs that touch every projection: memslots (create, move, delete, flags), VMAs, attributes, conversions, faults, invalidations.</summary>
public static class RandomRun
{
    public static List<InputEvent> Generate(int seed, int count)
    {
        var rng = new Random(seed);
        var x86 = seed % 2 == 0;
        var events = new List<InputEvent>
        {
            x86
                ? new HostDescribed(Arch.X86_64, "6.16.1", X86Vendor.Intel, 4096, new HostCaps(SelfSnoop: true, Tdp: true))
                : new HostDescribed(Arch.Arm64, "6.18.0", null, 4096, new HostCaps(Fwb: true, CacheDic: rng.Next(2) == 0)),
            new VmCreated(x86 ? VmType.SwProtected : VmType.Default, 40),
            new GuestMemfdCreated(7, 0x800000, x86 ? GuestMemfdFlags.None : GuestMemfdFlags.MMAP, null),
        };

        const ulong HvaBase = 0x7f0000000000;
        ulong Page(int max) => (ulong)rng.Next(max) << 12;
        while (events.Count < count)
        {
            var slot = rng.Next(4);
            var gpa = (ulong)slot * 0x1000000;
            var hva = HvaBase + ((ulong)slot * 0x1000000);
            switch (rng.Next(20))
            {
                case 0:
                case 1:
                    events.Add(new VmaMapped(HvaRange.FromSize(new(hva + Page(8)), 0x200000UL << rng.Next(3)), Perms.R | Perms.W, rng.Next(3) == 0 ? VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB : VmaFlags.VM_SHARED, x86 ? HostMemType.WB : HostMemType.MT_NORMAL,
                        rng.Next(3) == 0 ? new Backing(BackingKind.Hugetlb, HostPageSize: 0x200000) : new Backing(BackingKind.Shmem, Thp: rng.Next(2) == 0)));
                    break;
                case 2:
                    events.Add(new VmaUnmapped(HvaRange.FromSize(new(hva + Page(512)), 0x1000UL << rng.Next(10))));
                    break;
                case 3:
                    events.Add(new VmaProtectionChanged(HvaRange.FromSize(new(hva + Page(512)), 0x1000UL << rng.Next(8)), rng.Next(2) == 0 ? Perms.R : Perms.R | Perms.W, null));
                    break;
                case 4:
                {
                    var flags = rng.Next(3) switch { 0 => MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, 1 => MemslotFlags.None, _ => MemslotFlags.KVM_MEM_READONLY };
                    var moved = rng.Next(4) == 0 ? 0x10000000UL : 0;
                    events.Add(new MemslotSet(slot, 0, new(gpa + moved), rng.Next(6) == 0 ? 0UL : 0x1000000UL, new(hva), flags, null, null, null));
                    break;
                }

                case 5 when slot == 3:
                    events.Add(new MemslotSet(3, 0, new(gpa), 0x800000, new(hva), MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0, null));
                    break;
                case 6 when x86:
                    events.Add(new MemoryAttributesSet(new(gpa + Page(4096)), 0x1000UL << rng.Next(10), rng.Next(2) == 0, null));
                    break;
                case 7:
                    events.Add(new GuestMemfdConverted(7, Page(1024), 0x1000UL << rng.Next(9), rng.Next(2) == 0 ? Shareability.Shared : Shareability.Private, "KVM_GMEM_CONVERT", null, null));
                    break;
                case 8:
                {
                    var start = hva + Page(4096);
                    events.Add(new MmuNotifierInvalidated(new(start), new(start + 0x200000)));
                    break;
                }

                default:
                    events.Add(new GuestFaulted(0, new(gpa + Page(4096) + (ulong)rng.Next(0x1000)), (Access)rng.Next(3), rng.Next(6) == 0 ? FaultKind.Permission : FaultKind.Translation, x86 ? null : null));
                    break;
            }
        }

        return events;
    }

    /// <summary>A random run decided by the engine under its host's default policy: each input, then its decisions, with seqs from 1 and ts = 10 x seq.</summary>
    public static List<Recorded> Decided(int seed, int count)
    {
        var inputs = Generate(seed, count);
        var state = Engine.Start(Policies.DefaultFor((HostDescribed)inputs[0]));
        var run = new List<Recorded>();
        foreach (var input in inputs)
        {
            var seq = run.Count + 1L;
            run.Add(new Recorded(seq, 10 * seq, input));
            foreach (var d in Engine.Step(state, seq, input))
            {
                run.Add(new Recorded(run.Count + 1L, 10 * (run.Count + 1L), d));
            }
        }

        return run;
    }
}
