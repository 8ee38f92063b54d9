using Audit.Domain.Events;
using Audit.Domain.Model;
using KernelRules = Audit.Domain.Model.Rules;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// MTE enabled for the VM (KVM_CAP_ARM_MTE) with guest memory in VMAs lacking VM_MTE_ALLOWED: from
/// 6.2 kvm_arch_prepare_memory_region refuses the memslot, and a fault there fails (-EFAULT).
/// </summary>
public sealed class MteNotAllowed : LintRule
{
    private readonly HashSet<long> _reportedVmas = [];

    public override LintRuleInfo Info { get; } = new(
        "mte-vma-not-allowed", Severity.Error,
        "MTE enabled with guest memory lacking VM_MTE_ALLOWED",
        "KVM_CAP_ARM_MTE is enabled but a memslot covers a VMA without VM_MTE_ALLOWED (file or device mappings; the kernel sets it on anonymous and shmem memory). The memslot is refused with -EINVAL, or the fault fails with -EFAULT.",
        "Back guest RAM with anonymous or shmem memory (which gets VM_MTE_ALLOWED), keep device memory out of MTE VMs, or do not enable KVM_CAP_ARM_MTE.");

    public override void Observe(LintStep step, RunState before)
    {
        var d = step.Decision;
        var rule = DecidingRule(d);
        var errno = ErrnoOf(d);
        if (errno != 0 && (rule == KernelRules.Arm64SlotMte.Id || rule == KernelRules.Arm64Mte.Id))
        {
            var vmas = step.Input is MemslotSet m ? VmasUnder(before, m).Where(Lacks).Select(v => v.Seq).ToList() : [];
            _reportedVmas.UnionWith(vmas);
            Report($"{(step.Input is MemslotSet s ? $"slot {s.Slot}" : "the fault")} fails with {Domain.Events.Errno.Format(errno)}: {DecidingText(d)}", [step.Seq, .. vmas, before.MteSeq ?? step.Seq]);
        }
    }

    public override void Finish(RunState end)
    {
        if (!end.MteEnabled)
        {
            return;
        }

        foreach (var slot in end.Slots.Values.Where(s => !s.HasGmem))
        {
            foreach (var vma in VmasUnder(end, slot).Where(v => Lacks(v) && _reportedVmas.Add(v.Seq)))
            {
                Report($"slot {slot.Slot} covers {vma.Text} without VM_MTE_ALLOWED while MTE is enabled", [slot.Seq, vma.Seq, end.MteSeq!.Value]);
            }
        }
    }

    private static bool Lacks(VmaState v) => (v.Flags & VmaFlags.VM_MTE_ALLOWED) == 0;
}
