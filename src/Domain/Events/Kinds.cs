namespace Audit.Domain.Events;

public enum Arch { Arm64, X86_64 }

public enum X86Vendor { Intel, Amd }

public enum VmType { Default, SwProtected, Snp, Tdx, Protected }

/// <summary>Host VMA protection and stage-2 permissions share one shape: r, w, x.</summary>
[Flags]
public enum Perms { None = 0, R = 1, W = 2, X = 4 }

/// <summary>The VMA flags the model reads (kernel names in the trace).</summary>
[Flags]
public enum VmaFlags
{
    None = 0,
    VM_SHARED = 1 << 0,
    VM_PFNMAP = 1 << 1,
    VM_MIXEDMAP = 1 << 2,
    VM_IO = 1 << 3,
    VM_ALLOW_ANY_UNCACHED = 1 << 4,
    VM_MTE_ALLOWED = 1 << 5,
    VM_HUGETLB = 1 << 6,
}

/// <summary>Host memory type of vm_page_prot: arm64 MAIR index names, x86 PAT types.</summary>
public enum HostMemType
{
    MT_NORMAL,
    MT_NORMAL_TAGGED,
    MT_NORMAL_NC,
    MT_DEVICE_nGnRnE,
    MT_DEVICE_nGnRE,
    WB,
    WC,
    UC_MINUS,
    UC,
    WT,
}

public enum BackingKind { Anon, Shmem, Hugetlb, File, Vfio, Devmem, Dax, GuestMemfd }

[Flags]
public enum MemslotFlags
{
    None = 0,
    KVM_MEM_LOG_DIRTY_PAGES = 1 << 0,
    KVM_MEM_READONLY = 1 << 1,
    KVM_MEM_GUEST_MEMFD = 1 << 2,

    // Proposal flags from the cacheable-PFNMAP series (seed 000); never merged.
    KVM_MEM_ENABLE_CACHEABLE_PFNMAP = 1 << 3,
    KVM_MEM_FORCE_CACHEABLE_PFNMAP = 1 << 4,
}

[Flags]
public enum GuestMemfdFlags { None = 0, MMAP = 1 << 0, INIT_SHARED = 1 << 1 }

public enum Access { Read, Write, Exec }

public enum FaultKind { Translation, Permission, AccessFlag }

public enum Shareability { Shared, Private }

/// <summary>Stage-2 memory type: arm64 Normal/NormalNC/Device, x86 EPT memtypes.</summary>
public enum Stage2MemType { Normal, NormalNC, Device, WB, WC, WT, WP, UC }

public enum SlotChange { Create, Delete, Move, FlagsOnly, Noop }

/// <summary>What a fault came to; <see cref="Kept"/>: the walker found the same leaf already there and changed nothing.</summary>
public enum FaultOutcome { Mapped, Relaxed, Young, MmioExit, MemoryFaultExit, InjectIabt, InjectDabt, Sigbus, Error, Skipped, Kept }
