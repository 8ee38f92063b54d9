using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Intervals;

namespace Audit.Domain.Model;

/// <summary>A VMA (or the part of one that an mprotect split off), with the seqs that set its facts.</summary>
public sealed record VmaState(VmaMapped Mapped, ulong Start, ulong End, Perms Prot, HostMemType? MemType, long Seq, long ProtSeq)
{
    public VmaFlags Flags => Mapped.Flags;

    public Backing Backing => Mapped.Backing;

    public bool IsPfnOrMixedMap => (Flags & (VmaFlags.VM_PFNMAP | VmaFlags.VM_MIXEDMAP)) != 0;

    /// <summary>vm_pgoff of this VMA: the recorded pgoff (else the pfn) moved by how far this piece starts into the mmap.</summary>
    public ulong PgOff => (Backing.Pgoff ?? Backing.Pfn ?? 0) + ((Start - Mapped.Range.Start.Value) >> 12);

    public bool LinearMap => Backing.LinearMap ?? Backing.Kind is BackingKind.Anon or BackingKind.Shmem or BackingKind.Hugetlb or BackingKind.File or BackingKind.GuestMemfd;

    public bool StructPage => Backing.StructPage ?? Backing.Kind is not (BackingKind.Vfio or BackingKind.Devmem);

    private string? _text;

    // Copies (mprotect splits) describe themselves anew.
    private VmaState(VmaState original)
    {
        Mapped = original.Mapped;
        Start = original.Start;
        End = original.End;
        Prot = original.Prot;
        MemType = original.MemType;
        Seq = original.Seq;
        ProtSeq = original.ProtSeq;
    }

    private Fact? _fact, _flagsFact, _memTypeFact, _protFact, _linearFact, _structFact, _thpFact;

    /// <summary>How explanations describe this VMA (computed once).</summary>
    public string Text => _text ??= $"{Fmt.Range(Start, End)} {Fmt.Perms(Prot)} {Backing.Kind.ToString().ToLowerInvariant()}{(Backing.Path is { } p ? " " + p : "")}";

    // Facts about this VMA, built once: explanations cite them on every fault.
    internal Fact Fact => _fact ??= new("vma", Text, Seq);
    internal Fact FlagsFact => _flagsFact ??= new("vma.flags", Fmt.Flags(Flags), Seq);
    internal Fact MemTypeFact => _memTypeFact ??= new("vma.memType", Fmt.MemType(MemType), ProtSeq);
    internal Fact ProtFact => _protFact ??= new("vma.prot", Fmt.Perms(Prot), ProtSeq);
    internal Fact LinearMapFact => _linearFact ??= new("pfn_is_map_memory", Fmt.Bool(LinearMap), Seq);
    internal Fact StructPageFact => _structFact ??= new("pfn_valid", Fmt.Bool(StructPage), Seq);

    /// <summary>transparent_hugepage_adjust found a huge page backing the fault (a fact of the VMA that maps it).</summary>
    internal Fact ThpFact => _thpFact ??= new("vma.backing.thp", "true", Seq);

    private Fact? _hostPageSizeFact;

    /// <summary>The host page size backing this VMA (get_vma_page_shift), as the fault that found it named it.</summary>
    internal Fact HostPageSizeFact(ulong size) =>
        _hostPageSizeFact is { } f && f.Value == Fmt.Size(size) ? f : _hostPageSizeFact = new("vma.backing.hostPageSize", Fmt.Size(size), Seq);

    /// <summary>kvm_vma_is_cacheable: the MAIR index of vm_page_prot is Normal or Normal-Tagged (x86: WB).</summary>
    public bool Cacheable => MemType is null or HostMemType.MT_NORMAL or HostMemType.MT_NORMAL_TAGGED or HostMemType.WB;
}

public sealed record MemslotState(int Slot, int AsId, Gpa Gpa, ulong Size, Hva Hva, MemslotFlags Flags, int? GuestMemfd, ulong GuestMemfdOffset, long Seq, long FlagsSeq)
{
    public GpaRange Range => GpaRange.FromSize(Gpa, Size);

    public ulong End => Gpa.Value + Size;

    public bool LogDirty => (Flags & MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES) != 0;

    /// <summary>memslot_is_logging (arm64): a dirty bitmap and not read-only; a read-only slot never logs.</summary>
    public bool Logging => IsLogging(Flags);

    public static bool IsLogging(MemslotFlags flags) =>
        (flags & MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES) != 0 && (flags & MemslotFlags.KVM_MEM_READONLY) == 0;

    public bool ReadOnly => (Flags & MemslotFlags.KVM_MEM_READONLY) != 0;

    public bool HasGmem => (Flags & MemslotFlags.KVM_MEM_GUEST_MEMFD) != 0;

    public Hva HvaOf(Gpa gpa) => Memslots.SlotTranslation.HvaOf(Gpa.Value, Hva.Value, gpa);

    private string? _text;

    // A moved or re-flagged copy describes itself anew.
    private MemslotState(MemslotState original)
    {
        Slot = original.Slot;
        AsId = original.AsId;
        Gpa = original.Gpa;
        Size = original.Size;
        Hva = original.Hva;
        Flags = original.Flags;
        GuestMemfd = original.GuestMemfd;
        GuestMemfdOffset = original.GuestMemfdOffset;
        Seq = original.Seq;
        FlagsSeq = original.FlagsSeq;
    }

    private Fact? _fact, _flagsFact;

    internal Fact Fact => _fact ??= new("memslot", ToString(), Seq);
    internal Fact FlagsFact => _flagsFact ??= new("memslot.flags", Fmt.Flags(Flags), FlagsSeq);

    public override string ToString() => _text ??=
        $"slot {Slot} as {AsId} gpa [{Gpa}, {Hex.Format(End)}) hva {Hva}{(Flags == MemslotFlags.None ? "" : " " + Fmt.Flags(Flags))}";
}

public sealed class GuestMemfdState(int fd, ulong size, GuestMemfdFlags flags, long seq)
{
    public int Fd { get; } = fd;
    public ulong Size { get; } = size;
    public GuestMemfdFlags Flags { get; } = flags;
    public long Seq { get; } = seq;
    public long? ClosedSeq { get; set; }

    /// <summary>File ranges bound to memslots: offset interval -> (as, slot).</summary>
    public IntervalMap<(int AsId, int Slot)> Bindings { get; } = new();

    /// <summary>Punched file ranges: offset interval -> seq of the punch.</summary>
    public IntervalMap<long> Holes { get; } = new();

    /// <summary>In-place conversion (proposal): set once the file saw a conversion; then shareability lives here.</summary>
    public bool ConvertsInPlace { get; set; }

    /// <summary>Shared file ranges (proposal): offset interval -> seq; everything else is private (unless INIT_SHARED).</summary>
    public IntervalMap<long> Shared { get; } = new();

    public GuestMemfdState Clone()
    {
        var c = new GuestMemfdState(Fd, Size, Flags, Seq) { ClosedSeq = ClosedSeq, ConvertsInPlace = ConvertsInPlace };
        foreach (var b in Bindings.All())
        {
            c.Bindings.Set(b.Start, b.End, b.Value);
        }

        foreach (var h in Holes.All())
        {
            c.Holes.Set(h.Start, h.End, h.Value);
        }

        foreach (var s in Shared.All())
        {
            c.Shared.Set(s.Start, s.End, s.Value);
        }

        return c;
    }
}

/// <summary>
/// One stage-2 (EPT/NPT) entry run: an interval mapped with blocks of <see cref="Granule"/> bytes
/// that share attributes. A block mapping is one entry; a block split by dirty logging stays one
/// entry with a 4 KiB granule until its pages start to differ.
/// </summary>
public readonly record struct S2Entry(ulong Granule, Stage2MemType MemType, bool? Ipat, Perms Perms, long DecidedSeq, bool Private, bool Gmem);

/// <summary>Everything the model knows about a run at one point, each fact with the seq that set it.</summary>
public sealed class RunState
{
    public RunState(Policy policy)
    {
        Policy = policy;
        PolicyFact = new Fact("policy", policy.Id, null);
    }

    public Policy Policy { get; }

    internal Fact PolicyFact { get; }

    /// <summary>The array a fault's explanation is collected in, between decisions (Why); not state, never saved.</summary>
    internal ExplanationStep[]? WhyScratch;

    /// <summary>The context an arm64 fault is decided in, between decisions (Arm64FaultContext.Take); not state, never saved or cloned.</summary>
    internal Stage2.Arm64FaultContext? Arm64FaultScratch;

    private HostDescribed? _host;
    private Fact? _fwbFact, _dicFact;

    public HostDescribed? Host
    {
        get => _host;
        set
        {
            _host = value;
            _fwbFact = _dicFact = null;
        }
    }

    public long? HostSeq { get; set; }

    internal Fact FwbFact => _fwbFact ??= Facts.Cap(this, "fwb", Host?.Caps.Fwb);
    internal Fact DicFact => _dicFact ??= Facts.Cap(this, "cacheDic", Host?.Caps.CacheDic);
    public VmCreated? Vm { get; set; }
    public long? VmSeq { get; set; }

    public long? MteSeq { get; set; }
    public long? EagerSplitSeq { get; set; }
    public long? ManualProtectInitSetSeq { get; set; }

    /// <summary>Quirks disabled with KVM_CAP_DISABLE_QUIRKS2 -> the seq that disabled each.</summary>
    public Dictionary<X86Quirk, long> DisabledQuirks { get; } = [];

    public int NoncoherentDma { get; set; }
    public long? NoncoherentDmaSeq { get; set; }

    public IntervalMap<VmaState> Vmas { get; } = new();

    /// <summary>hwpoisoned host ranges (MADV_HWPOISON) -> seq.</summary>
    public IntervalMap<long> Poisoned { get; } = new();

    /// <summary>Host hva ranges whose transparent huge page a partial munmap, mprotect or madvise split -> that event's seq.</summary>
    public IntervalMap<long> HostSplit { get; } = new();

    /// <summary>Private host pages a guest write fault (or MADV_POPULATE_WRITE) made writable -> that fault's seq (until zapped or unmapped).</summary>
    public IntervalMap<long> HostWritten { get; } = new();

    /// <summary>Write-combine requests of seed 004, in order, with their seqs; later mmaps of the region range follow them.</summary>
    public List<(VfioRegionAttributesSet Request, long Seq)> VfioAttributes { get; } = [];

    public Dictionary<(int AsId, int Slot), MemslotState> Slots { get; } = [];

    /// <summary>Per address space: gpa interval -> slot.</summary>
    public Dictionary<int, IntervalMap<MemslotState>> SlotsByGpa { get; } = [];

    public Dictionary<int, GuestMemfdState> Gmem { get; } = [];

    /// <summary>Per-VM private ranges (KVM_SET_MEMORY_ATTRIBUTES): gpa interval -> seq that made it private.</summary>
    public IntervalMap<long> PrivateAttr { get; } = new();

    /// <summary>Seqs of the attribute changes that made ranges shared again (for explanations).</summary>
    public IntervalMap<long> SharedAttr { get; } = new();

    /// <summary>gfns whose last fault was refused (not mapped): the seq and the first reason, for divergence reports.</summary>
    public Dictionary<ulong, (long Seq, string Outcome, string Reason)> Refusals { get; } = [];

    /// <summary>gfns whose last fault decision was a memory-fault exit not yet seen by the VMM -> the fault's seq.</summary>
    public Dictionary<ulong, long> PendingMemoryFaults { get; } = [];

    /// <summary>Address space 0's stage-2 table: gpa interval -> entry.</summary>
    public IntervalMap<S2Entry> Stage2 { get; } = new();

    public Arch Arch => Host?.Arch ?? Policy.Arch;

    /// <summary>The release the policy models (not the recorded host's: a replay under another release decides as that release).</summary>
    public KernelVersion Kernel => Policy.Kernel;

    public ulong PageSize => Host?.PageSize ?? 4096;

    public VmType VmType => Vm?.VmType ?? VmType.Default;

    public bool MteEnabled => MteSeq is not null;

    public bool HasPrivateMemory => VmType is VmType.SwProtected or VmType.Snp or VmType.Tdx;

    public IntervalMap<MemslotState> SlotMap(int asId)
    {
        if (!SlotsByGpa.TryGetValue(asId, out var map))
        {
            map = new IntervalMap<MemslotState>();
            SlotsByGpa[asId] = map;
        }

        return map;
    }

    public MemslotState? SlotAt(Gpa gpa, int asId = 0) =>
        SlotsByGpa.TryGetValue(asId, out var map) && map.TryFind(gpa.Value, out var i) ? i.Value : null;

    public VmaState? VmaAt(Hva hva) => Vmas.TryFind(hva.Value, out var i) ? i.Value : null;

    /// <summary>A deep copy, so that a what-if decision or a replay can run without touching this state.</summary>
    public RunState Clone(Policy? policy = null)
    {
        var c = new RunState(policy ?? Policy)
        {
            Host = Host, HostSeq = HostSeq, Vm = Vm, VmSeq = VmSeq, MteSeq = MteSeq, EagerSplitSeq = EagerSplitSeq,
            ManualProtectInitSetSeq = ManualProtectInitSetSeq, NoncoherentDma = NoncoherentDma, NoncoherentDmaSeq = NoncoherentDmaSeq,
        };
        foreach (var (k, v) in DisabledQuirks)
        {
            c.DisabledQuirks[k] = v;
        }

        c.VfioAttributes.AddRange(VfioAttributes);

        Copy(Vmas, c.Vmas);
        Copy(Poisoned, c.Poisoned);
        Copy(HostWritten, c.HostWritten);
        Copy(HostSplit, c.HostSplit);
        Copy(PrivateAttr, c.PrivateAttr);
        Copy(SharedAttr, c.SharedAttr);
        Copy(Stage2, c.Stage2);
        foreach (var (k, v) in Slots)
        {
            c.Slots[k] = v;
            c.SlotMap(k.AsId).Set(v.Gpa.Value, v.End, v);
        }

        foreach (var (gfn, r) in Refusals)
        {
            c.Refusals[gfn] = r;
        }

        foreach (var (gfn, seq) in PendingMemoryFaults)
        {
            c.PendingMemoryFaults[gfn] = seq;
        }

        foreach (var (fd, g) in Gmem)
        {
            c.Gmem[fd] = g.Clone();
        }

        return c;

        static void Copy<T>(IntervalMap<T> from, IntervalMap<T> to)
        {
            foreach (var i in from.All())
            {
                to.Set(i.Start, i.End, i.Value);
            }
        }
    }
}
