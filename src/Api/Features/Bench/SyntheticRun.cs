using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Api.Features.Bench;

/// <summary>
/// A realistic synthetic arm64 run, deterministic for a seed: guest RAM on THP anon and 2M hugetlb,
/// a GPU PFNMAP and a BAR, faults with locality (sequential sweeps, permission faults on what the
/// sweeps' reads mapped read-only), dirty-logging toggles, munmap/madvise invalidations and memslot moves.
/// The sweeps still revisit mapped memory (as racing vCPUs do), which the projections keep as one row.
/// </summary>
public static class SyntheticRun
{
    private const ulong RamHva = 0x7f0000000000, RamGpa = 0x40000000, RamSize = 0x400000000;
    private const ulong HugeHva = 0x7e0000000000, HugeGpa = 0x800000000, HugeSize = 0x100000000;
    private const ulong GpuHva = 0x7d0000000000, GpuGpa = 0x40000000000, GpuSize = 0x400000000;
    private const ulong BarHva = 0x7c0000000000, BarGpa = 0x10000000, BarSize = 0x1000000;

    /// <summary>An address inside one of the run's memslots (for queries over a synthetic run).</summary>
    public static ulong RandomGuestAddress(Random rng) => rng.Next(4) switch
    {
        0 => RamGpa + ((ulong)rng.NextInt64((long)(RamSize >> 12)) << 12),
        1 => HugeGpa + ((ulong)rng.NextInt64((long)(HugeSize >> 12)) << 12),
        2 => GpuGpa + ((ulong)rng.NextInt64((long)(GpuSize >> 12)) << 12),
        _ => BarGpa + ((ulong)rng.Next((int)(BarSize >> 12)) << 12),
    };

    public static IEnumerable<(long TsNs, InputEvent Event)> Generate(long events, int seed)
    {
        var rng = new Random(seed);
        long ts = 1_772_445_600_000_000_000L;
        long n = 0;

        IEnumerable<InputEvent> Setup()
        {
            yield return new HostDescribed(Arch.Arm64, "6.17.2", null, 4096, new HostCaps(Fwb: true, CacheDic: true));
            yield return new VmCreated(VmType.Default, 48);
            // Guest RAM: the low half on transparent huge pages, the high half on 4 KiB pages.
            yield return new VmaMapped(HvaRange.FromSize(new(RamHva), RamSize / 2), Perms.R | Perms.W, VmaFlags.None, HostMemType.MT_NORMAL, new Backing(BackingKind.Anon, LinearMap: true, StructPage: true, HostPageSize: 4096, Thp: true));
            yield return new VmaMapped(HvaRange.FromSize(new(RamHva + (RamSize / 2)), RamSize / 2), Perms.R | Perms.W, VmaFlags.None, HostMemType.MT_NORMAL, new Backing(BackingKind.Anon, LinearMap: true, StructPage: true, HostPageSize: 4096, Thp: false));
            yield return new MemslotSet(0, 0, new(RamGpa), RamSize, new(RamHva), MemslotFlags.None, null, null, 0);
            yield return new VmaMapped(HvaRange.FromSize(new(HugeHva), HugeSize), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, new Backing(BackingKind.Hugetlb, "/dev/hugepages/ram", LinearMap: true, StructPage: true, HostPageSize: 0x200000));
            yield return new MemslotSet(1, 0, new(HugeGpa), HugeSize, new(HugeHva), MemslotFlags.None, null, null, 0);
            yield return new VmaMapped(HvaRange.FromSize(new(GpuHva), GpuSize), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP, HostMemType.MT_NORMAL, new Backing(BackingKind.Vfio, "nvgrace-gpu", GpuGpa >> 12, LinearMap: false, StructPage: false));
            yield return new MemslotSet(2, 0, new(GpuGpa), GpuSize, new(GpuHva), MemslotFlags.None, null, null, 0);
            yield return new VmaMapped(HvaRange.FromSize(new(BarHva), BarSize), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP | VmaFlags.VM_ALLOW_ANY_UNCACHED, HostMemType.MT_DEVICE_nGnRnE, new Backing(BackingKind.Vfio, "BAR0", 0x66000000, LinearMap: false, StructPage: false));
            yield return new MemslotSet(3, 0, new(BarGpa), BarSize, new(BarHva), MemslotFlags.None, null, null, 0);
        }

        foreach (var e in Setup())
        {
            yield return (ts += 1000, e);
            n++;
        }

        var cursor = RamGpa;
        var logging = false;
        // What the sweeps' reads mapped read-only, oldest first (a 2 MiB block on the THP half, else a page):
        // a guest takes a write permission fault there once, when it first writes.
        var readOnly = new Queue<ulong>();
        var queued = new HashSet<ulong>();
        while (n < events)
        {
            ts += 500 + rng.Next(2000);
            var dice = rng.Next(10_000);
            if (dice is >= 6_000 and < 8_000 && readOnly.Count == 0)
            {
                dice = 0;
            }

            InputEvent e;
            if (dice < 6_000)
            {
                // Sequential sweeps through guest RAM (boot, memset), 4K steps, alternating halves.
                cursor = cursor + 0x1000 >= RamGpa + RamSize ? RamGpa : cursor + 0x1000;
                if (rng.Next(2) == 0)
                {
                    cursor = cursor < RamGpa + (RamSize / 2) ? cursor + (RamSize / 2) : cursor - (RamSize / 2);
                }

                var read = rng.Next(4) == 0;
                e = new GuestFaulted(rng.Next(8), new(cursor), read ? Access.Read : Access.Write, FaultKind.Translation);
                var key = cursor < RamGpa + (RamSize / 2) ? cursor & ~0x1FFFFFUL : cursor;
                if (read && queued.Add(key))
                {
                    readOnly.Enqueue(key);
                    if (readOnly.Count > 4096)
                    {
                        queued.Remove(readOnly.Dequeue());
                    }
                }
            }
            else if (dice < 8_000)
            {
                // The first write to what a read mapped read-only: a permission fault.
                var page = readOnly.Dequeue();
                queued.Remove(page);
                e = new GuestFaulted(rng.Next(8), new(page), Access.Write, FaultKind.Permission);
            }
            else if (dice < 9_000)
            {
                e = new GuestFaulted(rng.Next(8), new(HugeGpa + ((ulong)rng.NextInt64((long)(HugeSize >> 12)) << 12)), Access.Write, FaultKind.Translation);
            }
            else if (dice < 9_600)
            {
                e = new GuestFaulted(rng.Next(8), new(GpuGpa + ((ulong)rng.NextInt64((long)(GpuSize >> 12)) << 12)), rng.Next(3) == 0 ? Access.Read : Access.Write, FaultKind.Translation);
            }
            else if (dice < 9_800)
            {
                e = new GuestFaulted(rng.Next(8), new(BarGpa + ((ulong)rng.Next((int)(BarSize >> 12)) << 12)), rng.Next(20) == 0 ? Access.Exec : Access.Write, FaultKind.Translation);
            }
            else if (dice < 9_900)
            {
                e = new GuestFaulted(rng.Next(8), new(RamGpa + ((ulong)rng.Next(0x100000) << 12)), Access.Read, FaultKind.AccessFlag);
            }
            else if (dice < 9_999 || rng.Next(10) != 0)
            {
                var hva = RamHva + ((ulong)rng.Next(0x100000) << 12);
                e = rng.Next(2) == 0
                    ? new VmaAdvised(HvaRange.FromSize(new(hva), 0x1000UL << rng.Next(6)), "MADV_DONTNEED")
                    : new MmuNotifierInvalidated(new(hva), new(hva + 0x200000));
            }
            else
            {
                logging = !logging;
                e = new MemslotSet(1, 0, new(HugeGpa), HugeSize, new(HugeHva), logging ? MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES : MemslotFlags.None, null, null, 0);
            }

            yield return (ts, e);
            n++;
        }
    }
}
