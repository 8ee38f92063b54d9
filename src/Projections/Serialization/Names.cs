using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>Canonical spellings of enum values in traces and stored payloads (kernel names where the kernel has one).</summary>
internal sealed class Names<T>
    where T : struct, Enum
{
    private readonly Dictionary<T, string> _write = [];

    public Names(params (T Value, string Name)[] pairs)
    {
        Read = new Dictionary<string, T>(StringComparer.OrdinalIgnoreCase);
        foreach (var (value, name) in pairs)
        {
            Read[name] = value;
            _write.TryAdd(value, name);
        }
    }

    public Dictionary<string, T> Read { get; }

    public string Write(T value) => _write[value];

    /// <summary>Flag names of the set bits, in declaration order.</summary>
    public IEnumerable<string> WriteFlags(T value)
    {
        var bits = Convert.ToUInt64(value, System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (flag, name) in _write)
        {
            var b = Convert.ToUInt64(flag, System.Globalization.CultureInfo.InvariantCulture);
            if (b != 0 && (bits & b) == b)
            {
                yield return name;
            }
        }
    }
}

internal static class KernelNames
{
    public static readonly Names<Arch> Arch = new((Domain.Events.Arch.Arm64, "arm64"), (Domain.Events.Arch.X86_64, "x86_64"), (Domain.Events.Arch.X86_64, "x86"));

    public static readonly Names<X86Vendor> Vendor = new((X86Vendor.Intel, "intel"), (X86Vendor.Amd, "amd"));

    public static readonly Names<VmType> VmType = new(
        (Domain.Events.VmType.Default, "default"), (Domain.Events.VmType.SwProtected, "sw_protected"),
        (Domain.Events.VmType.Snp, "snp"), (Domain.Events.VmType.Tdx, "tdx"), (Domain.Events.VmType.Protected, "protected"));

    public static readonly Names<VmaFlags> VmaFlags = new(
        (Domain.Events.VmaFlags.VM_SHARED, "VM_SHARED"), (Domain.Events.VmaFlags.VM_PFNMAP, "VM_PFNMAP"),
        (Domain.Events.VmaFlags.VM_MIXEDMAP, "VM_MIXEDMAP"), (Domain.Events.VmaFlags.VM_IO, "VM_IO"),
        (Domain.Events.VmaFlags.VM_ALLOW_ANY_UNCACHED, "VM_ALLOW_ANY_UNCACHED"),
        (Domain.Events.VmaFlags.VM_MTE_ALLOWED, "VM_MTE_ALLOWED"), (Domain.Events.VmaFlags.VM_HUGETLB, "VM_HUGETLB"));

    public static readonly Names<HostMemType> HostMemType = new(
        (Domain.Events.HostMemType.MT_NORMAL, "MT_NORMAL"), (Domain.Events.HostMemType.MT_NORMAL_TAGGED, "MT_NORMAL_TAGGED"),
        (Domain.Events.HostMemType.MT_NORMAL_NC, "MT_NORMAL_NC"), (Domain.Events.HostMemType.MT_DEVICE_nGnRnE, "MT_DEVICE_nGnRnE"),
        (Domain.Events.HostMemType.MT_DEVICE_nGnRE, "MT_DEVICE_nGnRE"), (Domain.Events.HostMemType.WB, "WB"),
        (Domain.Events.HostMemType.WC, "WC"), (Domain.Events.HostMemType.UC_MINUS, "UC-"), (Domain.Events.HostMemType.UC, "UC"),
        (Domain.Events.HostMemType.WT, "WT"));

    public static readonly Names<BackingKind> Backing = new(
        (BackingKind.Anon, "anon"), (BackingKind.Shmem, "shmem"), (BackingKind.Hugetlb, "hugetlb"), (BackingKind.File, "file"),
        (BackingKind.Vfio, "vfio"), (BackingKind.Devmem, "devmem"), (BackingKind.Dax, "dax"), (BackingKind.GuestMemfd, "guest_memfd"));

    public static readonly Names<MemslotFlags> MemslotFlags = new(
        (Domain.Events.MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, "KVM_MEM_LOG_DIRTY_PAGES"),
        (Domain.Events.MemslotFlags.KVM_MEM_READONLY, "KVM_MEM_READONLY"),
        (Domain.Events.MemslotFlags.KVM_MEM_GUEST_MEMFD, "KVM_MEM_GUEST_MEMFD"),
        (Domain.Events.MemslotFlags.KVM_MEM_ENABLE_CACHEABLE_PFNMAP, "KVM_MEM_ENABLE_CACHEABLE_PFNMAP"),
        (Domain.Events.MemslotFlags.KVM_MEM_FORCE_CACHEABLE_PFNMAP, "KVM_MEM_FORCE_CACHEABLE_PFNMAP"));

    public static readonly Names<GuestMemfdFlags> GmemFlags = new(
        (GuestMemfdFlags.MMAP, "MMAP"), (GuestMemfdFlags.INIT_SHARED, "INIT_SHARED"),
        (GuestMemfdFlags.MMAP, "GUEST_MEMFD_FLAG_MMAP"), (GuestMemfdFlags.INIT_SHARED, "GUEST_MEMFD_FLAG_INIT_SHARED"));

    public static readonly Names<Access> Access = new((Domain.Events.Access.Read, "read"), (Domain.Events.Access.Write, "write"), (Domain.Events.Access.Exec, "exec"));

    public static readonly Names<FaultKind> FaultKind = new(
        (Domain.Events.FaultKind.Translation, "translation"), (Domain.Events.FaultKind.Permission, "permission"),
        (Domain.Events.FaultKind.AccessFlag, "access_flag"));

    public static readonly Names<Shareability> Shareability = new((Domain.Events.Shareability.Shared, "shared"), (Domain.Events.Shareability.Private, "private"));

    public static readonly Names<Stage2MemType> Stage2MemType = new(
        (Domain.Events.Stage2MemType.Normal, "Normal"), (Domain.Events.Stage2MemType.NormalNC, "NormalNC"),
        (Domain.Events.Stage2MemType.Device, "Device"), (Domain.Events.Stage2MemType.WB, "WB"), (Domain.Events.Stage2MemType.WC, "WC"),
        (Domain.Events.Stage2MemType.WT, "WT"), (Domain.Events.Stage2MemType.WP, "WP"), (Domain.Events.Stage2MemType.UC, "UC"));

    public static readonly Names<SlotChange> SlotChange = new(
        (Domain.Events.SlotChange.Create, "create"), (Domain.Events.SlotChange.Delete, "delete"), (Domain.Events.SlotChange.Move, "move"),
        (Domain.Events.SlotChange.FlagsOnly, "flags_only"), (Domain.Events.SlotChange.Noop, "noop"));

    public static readonly Names<FaultOutcome> Outcome = new(
        (FaultOutcome.Mapped, "mapped"), (FaultOutcome.Relaxed, "relaxed"), (FaultOutcome.Young, "young"),
        (FaultOutcome.MmioExit, "mmio_exit"), (FaultOutcome.MemoryFaultExit, "memory_fault_exit"),
        (FaultOutcome.InjectIabt, "inject_iabt"), (FaultOutcome.InjectDabt, "inject_dabt"), (FaultOutcome.Sigbus, "sigbus"),
        (FaultOutcome.Error, "error"), (FaultOutcome.Skipped, "skipped"), (FaultOutcome.Kept, "kept"));

    /// <summary>Three characters rwx, '-' for a missing one.</summary>
    public static string FormatPerms(Perms p) =>
        string.Concat((p & Perms.R) != 0 ? "r" : "-", (p & Perms.W) != 0 ? "w" : "-", (p & Perms.X) != 0 ? "x" : "-");

    public static bool TryParsePerms(string s, out Perms perms)
    {
        perms = Perms.None;
        if (s.Length != 3)
        {
            return false;
        }

        for (var i = 0; i < 3; i++)
        {
            var want = "rwx"[i];
            if (s[i] == want)
            {
                perms |= (Perms)(1 << i);
            }
            else if (s[i] != '-')
            {
                return false;
            }
        }

        return true;
    }
}
