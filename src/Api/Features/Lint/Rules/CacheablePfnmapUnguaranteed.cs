using Audit.Domain.Events;
using Audit.Domain.Model;
using KernelRules = Audit.Domain.Model.Rules;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// Cacheable PFNMAP memory (e.g. Grace-Hopper GPU memory) on a host that lacks FEAT_S2FWB or
/// CTR_EL0.DIC: without FWB the guest can weaken a Normal stage-2 mapping, so 6.17+ refuses the
/// memslot (kvm_arch_prepare_memory_region) or fails the fault (user_mem_abort, -EFAULT).
/// </summary>
public sealed class CacheablePfnmapUnguaranteed : LintRule
{
    private readonly HashSet<long> _reportedVmas = [];

    public override LintRuleInfo Info { get; } = new(
        "cacheable-pfnmap-unguaranteed", Severity.Error,
        "Cacheable PFNMAP memory on a host that cannot guarantee it",
        "A VM_PFNMAP VMA with a cacheable pgprot sits under a memslot on an arm64 host without both FWB and CACHE_DIC. From 6.17 KVM refuses such memslots (-EINVAL) or fails the fault (-EFAULT); older kernels map it without the guarantee.",
        "Run the VM on a host with FEAT_S2FWB and CTR_EL0.DIC, or have the driver map the memory non-cacheable (pgprot_writecombine / pgprot_device).");

    public override void Observe(LintStep step, RunState before)
    {
        var decision = step.Decision;
        var refusingRule = DecidingRule(decision);
        if ((refusingRule == KernelRules.Arm64SlotCacheablePfnmap.Id || refusingRule == KernelRules.Arm64CacheablePfnmap.Id) && ErrnoOf(decision) != 0)
        {
            var vmaSeqs = step.Input is MemslotSet m ? VmasUnder(before, m).Where(IsCacheablePfnmap).Select(v => v.Seq).ToList() : [];
            _reportedVmas.UnionWith(vmaSeqs);
            Report($"{What(step.Input)} fails with {Domain.Events.Errno.Format(ErrnoOf(decision))}: {DecidingText(decision)}", [step.Seq, .. vmaSeqs]);
            return;
        }

        if (step.Input is MemslotSet set && before.Arch == Arch.Arm64 && ErrnoOf(decision) == 0 && !HostGuarantees(before))
        {
            foreach (var vma in VmasUnder(before, set).Where(v => IsCacheablePfnmap(v) && _reportedVmas.Add(v.Seq)))
            {
                Report($"slot {set.Slot} maps cacheable PFNMAP VMA {vma.Text} but the host lacks FWB or CACHE_DIC (fwb={Cap(before.Host?.Caps.Fwb)}, cacheDic={Cap(before.Host?.Caps.CacheDic)}): 6.17+ refuses it", [step.Seq, vma.Seq, before.HostSeq ?? step.Seq]);
            }
        }
    }

    private static bool IsCacheablePfnmap(VmaState v) => (v.Flags & VmaFlags.VM_PFNMAP) != 0 && v.MemType is HostMemType.MT_NORMAL or HostMemType.MT_NORMAL_TAGGED;

    private static bool HostGuarantees(RunState s) => s.Host?.Caps.Fwb == true && s.Host?.Caps.CacheDic == true;

    private static string Cap(bool? b) => b switch { true => "true", false => "false", _ => "unknown" };

    private static string What(InputEvent e) => e switch
    {
        MemslotSet m => $"slot {m.Slot} (gpa {m.Gpa})",
        GuestFaulted f => $"the fault at {f.Gpa}",
        _ => "the call",
    };
}
