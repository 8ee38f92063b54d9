using Audit.Domain.Addresses;

namespace Audit.Domain.Events;

/// <summary>
/// The closed hierarchy of everything stored in a run's stream. Inputs are recorded facts;
/// derived events are written by the engine, never by clients. Sequence number and timestamp
/// live in the envelope (<see cref="Recorded"/>), not here.
/// </summary>
public abstract record RunEvent
{
    private protected RunEvent()
    {
    }
}

public abstract record InputEvent : RunEvent
{
    private protected InputEvent()
    {
    }
}

public abstract record DerivedEvent : RunEvent
{
    private protected DerivedEvent()
    {
    }
}

/// <summary>An event with its per-run sequence number and optional timestamp (ns since the epoch, or a monotonic clock's ns).</summary>
public readonly record struct Recorded(long Seq, long? TsNs, RunEvent Event);

public sealed record HostCaps(bool? Fwb = null, bool? CacheDic = null, bool? SelfSnoop = null, bool? Tdp = null, bool? TdpMmu = null, bool? Pml = null)
{
    public static HostCaps None { get; } = new();
}

/// <param name="Inferred">set when an importer inferred the host from a trace without one: what it read, and what it assumed.</param>
public sealed record HostDescribed(Arch Arch, string Kernel, X86Vendor? Vendor, ulong PageSize, HostCaps Caps, string? Inferred = null) : InputEvent;

public sealed record VmCreated(VmType VmType, int? IpaBits) : InputEvent;

/// <summary>One named argument of KVM_ENABLE_CAP; arrays keep their order, scalars are one value.</summary>
public sealed record CapArg(string Name, ValueList<string> Values);

public sealed record CapabilityEnabled(string Cap, ValueList<CapArg> Args) : InputEvent
{
    /// <summary>The capability as the model reads it, parsed once when the event is made.</summary>
    public KvmCap Kind { get; } = Capabilities.Parse(Cap);
}

public sealed record NoncoherentDmaChanged(bool Attached, string? Device) : InputEvent;

public sealed record Backing(
    BackingKind Kind,
    string? Path = null,
    ulong? Pfn = null,
    ulong? Pgoff = null,
    bool? LinearMap = null,
    bool? StructPage = null,
    bool? E820Ram = null,
    ulong? HostPageSize = null,
    bool? Thp = null);

public sealed record VmaMapped(HvaRange Range, Perms Prot, VmaFlags Flags, HostMemType? MemType, Backing Backing) : InputEvent;

public sealed record VmaUnmapped(HvaRange Range) : InputEvent;

public sealed record VmaProtectionChanged(HvaRange Range, Perms Prot, HostMemType? MemType) : InputEvent;

public sealed record VmaAdvised(HvaRange Range, string Advice) : InputEvent
{
    /// <summary>The advice as the model reads it, parsed once when the event is made.</summary>
    public Advice Kind { get; } = Advices.Parse(Advice);
}

public sealed record VfioRegionAttributesSet(string Device, int Region, ulong Offset, ulong Length, string Attr) : InputEvent;

/// <summary>KVM_SET_USER_MEMORY_REGION(2). Values are as the VMM passed them: the model checks alignment.</summary>
public sealed record MemslotSet(
    int Slot,
    int AsId,
    Gpa Gpa,
    ulong Size,
    Hva Hva,
    MemslotFlags Flags,
    int? GuestMemfd,
    ulong? GuestMemfdOffset,
    int? Result) : InputEvent;

public sealed record GuestMemfdCreated(int Fd, ulong Size, GuestMemfdFlags Flags, int? Result) : InputEvent;

public sealed record GuestMemfdFallocated(int Fd, ulong Offset, ulong Length, bool PunchHole) : InputEvent;

public sealed record GuestMemfdClosed(int Fd) : InputEvent;

public sealed record MemoryAttributesSet(Gpa Gpa, ulong Size, bool Private, int? Result) : InputEvent;

public sealed record GuestMemfdConverted(int Fd, ulong Offset, ulong Size, Shareability To, string Via, int? Result, ulong? ErrorOffset) : InputEvent;

public sealed record GuestFaulted(
    int Vcpu,
    Gpa Gpa,
    Access Access,
    FaultKind Kind,
    bool? Private = null,
    bool S1ptw = false,
    bool Cm = false,
    ulong? Granule = null,
    bool? GuestPteDirty = null) : InputEvent;

public sealed record MmuNotifierInvalidated(Hva Start, Hva End) : InputEvent;

public sealed record Stage2MappingObserved(Gpa Gpa, ulong Size, Stage2MemType? MemType, bool? Ipat, Perms Perms, string? Raw) : InputEvent;

public sealed record MemoryFaultExitObserved(Gpa Gpa, ulong Size, ulong Flags) : InputEvent;

/// <summary>A fact a rule read, with the seq of the event that established it (null: a built-in of the policy).</summary>
public sealed record Fact(string Name, string Value, long? Seq);

public sealed record ExplanationStep(string Rule, string Text, ValueList<Fact> Facts);

public sealed record Mapping(Gpa Gpa, ulong Size, Stage2MemType MemType, bool? Ipat, Perms Perms)
{
    public GpaRange Range => GpaRange.FromSize(Gpa, Size);
}

public sealed record MemslotDecided(
    long InputSeq,
    SlotChange Change,
    int PredictedErrno,
    int? RecordedErrno,
    string Policy,
    ValueList<ExplanationStep> Explanation) : DerivedEvent;

public sealed record FaultResolved(
    long InputSeq,
    FaultOutcome Outcome,
    int Errno,
    Mapping? Mapping,
    string Policy,
    ValueList<ExplanationStep> Explanation) : DerivedEvent;

/// <summary>The engine unmapped these ranges because of the event at <paramref name="CauseSeq"/>, by the rule <paramref name="Rule"/> (null in runs stored before rules were carried).</summary>
public sealed record Stage2Unmapped(long CauseSeq, ValueList<GpaRange> Ranges, string? Rule = null) : DerivedEvent;

public sealed record DivergenceFound(long InputSeq, string Model, string Kernel) : DerivedEvent;

/// <summary>Enabling dirty logging write-protected these mappings (and split them to 4 KiB when <paramref name="Split"/>).</summary>
/// <param name="KeepsWrite">Intel PML: the 4K entries keep W (their dirty bits are cleared instead).</param>
public sealed record Stage2WriteProtected(long CauseSeq, ValueList<GpaRange> Ranges, bool Split, string? Rule = null, bool KeepsWrite = false) : DerivedEvent;

/// <summary>The model's verdict on a guest_memfd or memory-attribute ioctl (create, attributes, conversion).</summary>
public sealed record IoctlDecided(
    long InputSeq,
    string Ioctl,
    int PredictedErrno,
    int? RecordedErrno,
    string Policy,
    ValueList<ExplanationStep> Explanation) : DerivedEvent;
