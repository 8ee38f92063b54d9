using Audit.Domain.Events;
using Audit.Domain.Model;
using KernelRules = Audit.Domain.Model.Rules;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// The same gfn taking private/shared mismatch exits again and again (kvm_mmu_faultin_pfn ->
/// KVM_EXIT_MEMORY_FAULT): the VMM answers the exit without converting the page, or the guest and
/// the VMM disagree about who owns it, and the vCPU loops.
/// </summary>
public sealed class GmemRepeatedMismatch : LintRule
{
    private const int Repeated = 2;
    private readonly Dictionary<ulong, List<long>> _byGfn = [];

    public override LintRuleInfo Info { get; } = new(
        "gmem-repeated-mismatch", Severity.Warning,
        "Repeated private/shared mismatch exits on the same gfn",
        "A guest page faulted with a privacy that differs from its memory attribute more than once; each time KVM returned KVM_EXIT_MEMORY_FAULT. The VMM should convert the page (KVM_SET_MEMORY_ATTRIBUTES) before resuming the vCPU.",
        "Check the VMM's KVM_EXIT_MEMORY_FAULT handler: it must set the attribute the exit asks for (private flag) on the reported range before re-entering the guest.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is GuestFaulted f && step.Decision is FaultResolved { Outcome: FaultOutcome.MemoryFaultExit } r && Cites(r, KernelRules.X86PrivateMismatch))
        {
            if (!_byGfn.TryGetValue(f.Gpa.Gfn, out var seqs))
            {
                seqs = [];
                _byGfn[f.Gpa.Gfn] = seqs;
            }

            seqs.Add(step.Seq);
        }
    }

    public override void Finish(RunState end)
    {
        foreach (var (gfn, seqs) in _byGfn.Where(g => g.Value.Count >= Repeated).OrderBy(g => g.Key))
        {
            Report($"gpa {Fmt.Hex(gfn << 12)}: {seqs.Count} private/shared mismatch exits", seqs);
        }
    }
}
