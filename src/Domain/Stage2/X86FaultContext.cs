using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>What the x86 fault path knows while its rules run (kvm_mmu_faultin_pfn to make_spte).</summary>
internal sealed class X86FaultContext(RunState s, GuestFaulted f, long seq)
{
    public RunState S { get; } = s;
    public GuestFaulted F { get; } = f;
    public long Seq { get; } = seq;
    public Why Why { get; } = new(s);
    public Fact Fault { get; } = Facts.Fault(f, seq);
    public bool Write { get; } = f.Access == Access.Write;
    public bool FaultPrivate { get; } = X86Fault.FaultIsPrivate(s, f);
    public MemslotState? Slot { get; } = s.SlotAt(f.Gpa);

    /// <summary>The pfn comes from guest_memfd: a private fault, or a guest_memfd-only (MMAP) slot.</summary>
    public bool FromGmem { get; set; }

    public VmaState? Vma { get; set; }
    public bool IsMmio { get; set; }
    public bool HostWritable { get; set; }
    public ulong HostLevel { get; set; } = HostMapping.P4K;
    public ulong Level { get; set; } = HostMapping.P4K;

    /// <summary>Set by the memory-type rule of the flavour and release that decided it.</summary>
    public (Stage2MemType MemType, bool? Ipat)? Memtype { get; set; }

    public bool Writable { get; set; }

    public Fact SlotFact => Facts.Slot(Slot!);

    public Fact DmaFact => new("noncoherent_dma", S.NoncoherentDma > 0 ? "attached" : "none", S.NoncoherentDmaSeq);

    public FaultResolved Done(FaultOutcome outcome, int errno = 0, Mapping? mapping = null) =>
        new(Seq, outcome, errno, mapping, S.Policy.Id, Why.Build());
}
