using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>What user_mem_abort knows while its rules run: the fault, what each rule found so far, and the explanation.</summary>
/// <remarks>
/// A run lends its context from one fault to the next (<see cref="Take"/>, <see cref="Return"/>) instead of
/// allocating one per fault. <see cref="Begin"/> sets every field, so nothing a rule found for one fault is
/// seen by the next.
/// </remarks>
internal sealed class Arm64FaultContext
{
    // Its own explanation array, not the one the run lends to other decisions: the context keeps it.
    private Arm64FaultContext() => Why = new Why();

    /// <summary>The run's idle context, or a new one when the run has none to lend (a decision inside a decision).</summary>
    public static Arm64FaultContext Take(RunState s, GuestFaulted f, long seq)
    {
        var c = s.Arm64FaultScratch ?? new Arm64FaultContext();
        s.Arm64FaultScratch = null;
        c.Begin(s, f, seq);
        return c;
    }

    /// <summary>Gives the context back to its run once the decision is built (its explanation and extra events handed on).</summary>
    public static void Return(Arm64FaultContext c)
    {
        c.Why.Clear();
        c.Extra = null;
        c.S.Arm64FaultScratch = c;
    }

    private void Begin(RunState s, GuestFaulted f, long seq)
    {
        S = s;
        F = f;
        Seq = seq;
        Fault = Facts.Fault(f, seq);
        Write = f.Access == Access.Write && !f.S1ptw;
        Exec = f.Access == Access.Exec && !f.S1ptw;
        Slot = null!;
        Hva = default;
        Vma = null!;
        Logging = false;
        Size = HostMapping.P4K;
        ForcePte = false;
        Device = false;
        Writable = false;
        Perms = default;
        MemType = Stage2MemType.Normal;
        Extra = null;
    }

    public RunState S { get; private set; } = null!;
    public GuestFaulted F { get; private set; } = null!;
    public long Seq { get; private set; }
    public Why Why { get; }
    public Fact Fault { get; private set; } = null!;

    /// <summary>kvm_is_write_fault; the S1PTW rules may change it.</summary>
    public bool Write { get; set; }

    /// <summary>kvm_vcpu_trap_is_exec_fault: an instruction abort that is not a stage-1 walk.</summary>
    public bool Exec { get; private set; }

    public MemslotState Slot { get; set; } = null!;
    public Hva Hva { get; set; }
    public VmaState Vma { get; set; } = null!;

    /// <summary>memslot_is_logging: a dirty bitmap and not read-only.</summary>
    public bool Logging { get; set; }

    public ulong Size { get; set; }
    public bool ForcePte { get; set; }

    /// <summary>kvm_is_device_pfn before 6.17, s2_force_noncacheable from 6.17.</summary>
    public bool Device { get; set; }

    public bool Writable { get; set; }
    public Perms Perms { get; set; }
    public Stage2MemType MemType { get; set; }

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
