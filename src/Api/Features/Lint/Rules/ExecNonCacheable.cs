using Audit.Domain.Events;
using Audit.Domain.Model;
using KernelRules = Audit.Domain.Model.Rules;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// Instruction fetches from non-cacheable memory: arm64 refuses them (user_mem_abort injects an
/// instruction abort, -ENOEXEC), and an executable non-cacheable mapping is almost always a guest or
/// VMM bug (code placed in a BAR, or a device region mapped executable).
/// </summary>
public sealed class ExecNonCacheable : LintRule
{
    public override LintRuleInfo Info { get; } = new(
        "exec-noncacheable", Severity.Warning,
        "Executable or exec-faulting non-cacheable memory",
        "The guest fetched instructions from memory that KVM maps non-cacheable (Device, Normal-NC, UC/WC), or such memory was mapped executable. arm64 injects an instruction abort for the fetch.",
        "Find why the guest executes from that range (firmware or driver placing code in a BAR, a wrong memory map); keep executable memory in guest RAM.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not GuestFaulted f || step.Decision is not FaultResolved r)
        {
            return;
        }

        if (Cites(r, KernelRules.Arm64ExecNonCacheable) && r.Outcome == FaultOutcome.InjectIabt)
        {
            Report($"instruction fetch at {f.Gpa}: {DecidingText(r)}", [step.Seq]);
        }
        else if (r.Mapping is { } m && (m.Perms & Perms.X) != 0 && m.MemType is Stage2MemType.Device or Stage2MemType.NormalNC or Stage2MemType.UC or Stage2MemType.WC)
        {
            Report($"{Fmt.Mapping(m)} is executable but non-cacheable", [step.Seq]);
        }
    }
}
