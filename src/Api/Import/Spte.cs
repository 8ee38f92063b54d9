using Audit.Domain.Events;

namespace Audit.Api.Import;

/// <summary>
/// A raw x86 SPTE as KVM's tracepoints print it, decoded (arch/x86/kvm/mmu/spte.h). Legacy (shadow and
/// NPT) SPTEs use the page-table layout: W bit 1, U bit 2, PWT bit 3, PCD bit 4, A bit 5, D bit 6, PS bit 7,
/// NX bit 63. EPT SPTEs: R/W/X bits 0-2, memory type bits 3-5, IPAT bit 6, A bit 8, D bit 9. Both keep
/// KVM's own bits: MMU-present bit 11, host-writable bit 57.
/// </summary>
public readonly record struct Spte(ulong Raw, bool Ept)
{
    public bool Present => (Raw & (1UL << 11)) != 0 || (Ept ? (Raw & 7) != 0 : (Raw & 1) != 0);

    public Perms Perms => Ept
        ? ((Raw & 1) != 0 ? Perms.R : 0) | ((Raw & 2) != 0 ? Perms.W : 0) | ((Raw & 4) != 0 ? Perms.X : 0)
        : (Present ? Perms.R : 0) | ((Raw & 2) != 0 ? Perms.W : 0) | ((Raw >> 63) == 0 && Present ? Perms.X : 0);

    public bool User => !Ept && (Raw & 4) != 0;

    public bool HostWritable => (Raw & (1UL << 57)) != 0;

    public bool Accessed => (Raw & (Ept ? 1UL << 8 : 1UL << 5)) != 0;

    public bool Dirty => (Raw & (Ept ? 1UL << 9 : 1UL << 6)) != 0;

    /// <summary>EPT: the memory type field (0 UC, 1 WC, 4 WT, 5 WP, 6 WB). Legacy: PWT/PCD clear is write-back, else uncached.</summary>
    public Stage2MemType MemType => Ept
        ? ((Raw >> 3) & 7) switch { 0 => Stage2MemType.UC, 1 => Stage2MemType.WC, 4 => Stage2MemType.WT, 5 => Stage2MemType.WP, _ => Stage2MemType.WB }
        : (Raw & 0x18) == 0 ? Stage2MemType.WB : Stage2MemType.UC;

    public bool? Ipat => Ept ? (Raw & (1UL << 6)) != 0 : null;

    public static ulong LevelSize(int level) => level switch { 2 => 0x200000UL, 3 => 0x40000000UL, 4 => 0x8000000000UL, _ => 0x1000UL };
}
