using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>What user_mem_abort knows while its rules run: the fault, what each rule found so far, and the explanation.</summary>
internal sealed class Arm64FaultContext(RunState s, GuestFaulted f, long seq)
{
    public RunState S { get; } = s;
    public GuestFaulted F { get; } = f;
    public long Seq { get; } = seq;
    public Why Why { get; } = new(s);
    public Fact Fault { get; } = Facts.Fault(f, seq);

    /// <summary>kvm_is_write_fault; the S1PTW rules may change it.</summary>
    public bool Write { get; set; } = f.Access == Access.Write && !f.S1ptw;

    /// <summary>kvm_vcpu_trap_is_exec_fault: an instruction abort that is not a stage-1 walk.</summary>
    public bool Exec { get; } = f.Access == Access.Exec && !f.S1ptw;

    public MemslotState Slot { get; set; } = null!;
    public Hva Hva { get; set; }
    public VmaState Vma { get; set; } = null!;

    /// <summary>memslot_is_logging: a dirty bitmap and not read-only.</summary>
    public bool Logging { get; set; }

    public ulong Size { get; set; } = HostMapping.P4K;
    public bool ForcePte { get; set; }

    /// <summary>kvm_is_device_pfn before 6.17, s2_force_noncacheable from 6.17.</summary>
    public bool Device { get; set; }

    public bool Writable { get; set; }
    public Perms Perms { get; set; }
    public Stage2MemType MemType { get; set; } = Stage2MemType.Normal;

    /// <summary>Derived events the decision emits beside its FaultResolved (the rest of a block it broke).</summary>
    public List<DerivedEvent>? Extra { get; private set; }

    /// <summary>Most faults emit nothing beside their FaultResolved, so the list is made on the first one.</summary>
    public void Emit(DerivedEvent e) => (Extra ??= []).Add(e);

    public Fact SlotFact => Facts.Slot(Slot);
    public Fact VmaFact => Facts.Vma(Vma);
    public bool IsPermission => F.Kind == FaultKind.Permission;

    public FaultResolved Done(FaultOutcome outcome, int errno = 0, Mapping? mapping = null) =>
        new(Seq, outcome, errno, mapping, S.Policy.Id, Why.Build());
}
