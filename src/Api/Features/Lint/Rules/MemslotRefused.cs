using Audit.Domain.Events;
using Audit.Domain.Model;
using KernelRules = Audit.Domain.Model.Rules;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// Memslot ioctls that failed, named with the rule that refused them. Refusals that a more specific
/// lint rule explains (cacheable PFNMAP, MTE) are left to that rule, so one cause gives one finding.
/// </summary>
public sealed class MemslotRefused : LintRule
{
    private static readonly HashSet<string> ExplainedElsewhere =
        [KernelRules.Arm64SlotCacheablePfnmap.Id, KernelRules.Arm64SlotMte.Id];

    public override LintRuleInfo Info { get; } = new(
        "memslot-refused", Severity.Error,
        "A memslot ioctl failed",
        "KVM_SET_USER_MEMORY_REGION(2) failed in the model or in the recorded result; the guest range it should have backed is missing or unchanged.",
        "Read the refusing rule and fix the call (alignment, overlap, flags, VMA kind); `audit why` on the slot's gpa shows the facts it read.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not MemslotSet m || step.Decision is not MemslotDecided d)
        {
            return;
        }

        var rule = DecidingRule(d);
        // A failure only the trace recorded has no refusing rule: model-divergence reports it.
        if (d.PredictedErrno != 0 && !ExplainedElsewhere.Contains(rule ?? ""))
        {
            Report($"slot {m.Slot} (gpa {m.Gpa}, {Fmt.Size(m.Size)}) fails with {Errno.Format(d.PredictedErrno)}: {DecidingText(d)} [{rule}]", [step.Seq]);
        }
    }
}
