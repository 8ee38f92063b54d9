using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// Device memory mapped Device at stage 2 where Normal-NC was possible: since 6.9 (arm64
/// user_mem_abort) KVM maps a device pfn Normal-NC when the VMA has VM_ALLOW_ANY_UNCACHED, which
/// vfio-pci sets; Device-nGnRE forbids write-combining and unaligned accesses in the guest.
/// </summary>
public sealed class DeviceNotNormalNc : LintRule
{
    private readonly Dictionary<long, (VmaState Vma, List<long> Faults, bool OldKernel)> _byVma = [];

    public override LintRuleInfo Info { get; } = new(
        "device-not-normal-nc", Severity.Warning,
        "Device memory mapped Device where Normal-NC (or Normal) was possible",
        "A guest fault mapped device memory as Device-nGnRE. From 6.9 arm64 KVM maps it Normal-NC when the VMA has VM_ALLOW_ANY_UNCACHED (vfio-pci sets it); the guest then may write-combine and make unaligned accesses, as on bare metal. Memory whose pgprot is cacheable (GPU memory) maps Normal from 6.17 on hosts with FWB and DIC.",
        "Run a 6.9+ kernel and have the driver set VM_ALLOW_ANY_UNCACHED on the mmap (vfio-pci does), or 6.17+ for cacheable device memory; check the change with `audit replay RUN --policy arm64/6.17 --set vma[START].flags+=VM_ALLOW_ANY_UNCACHED`.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not GuestFaulted f || step.Decision is not FaultResolved { Mapping.MemType: Stage2MemType.Device } || before.Arch != Arch.Arm64)
        {
            return;
        }

        if (before.SlotAt(f.Gpa) is not { } slot || before.VmaAt(slot.HvaOf(f.Gpa)) is not { } vma)
        {
            return;
        }

        // A cacheable pgprot (e.g. GPU memory) maps Normal from 6.17; a non-cacheable one Normal-NC from 6.9
        // when the VMA allows it.
        var hasFlag = (vma.Flags & VmaFlags.VM_ALLOW_ANY_UNCACHED) != 0;
        var oldKernel = vma.Cacheable
            ? before.Policy.Cacheability != Arm64Cacheability.CacheablePfnmap
            : before.Policy.Cacheability is Arm64Cacheability.PfnValid or Arm64Cacheability.LinearMap;
        if ((hasFlag || vma.Cacheable) && !oldKernel)
        {
            return;
        }

        if (!_byVma.TryGetValue(vma.Seq, out var seen))
        {
            seen = (vma, [], oldKernel);
            _byVma[vma.Seq] = seen;
        }

        seen.Faults.Add(step.Seq);
    }

    public override void Finish(RunState end)
    {
        foreach (var (seq, (vma, faults, oldKernel)) in _byVma)
        {
            var why = vma.Cacheable
                ? $"the VMA's pgprot is cacheable ({Fmt.MemType(vma.MemType)}) and {end.Policy.Id} predates 6.17, which maps it Normal on hosts with FWB and DIC"
                : (vma.Flags & VmaFlags.VM_ALLOW_ANY_UNCACHED) != 0
                ? $"the VMA has VM_ALLOW_ANY_UNCACHED but {end.Policy.Id} predates 6.9, which would map it Normal-NC"
                : oldKernel
                    ? $"the VMA lacks VM_ALLOW_ANY_UNCACHED and {end.Policy.Id} predates 6.9: neither lets KVM use Normal-NC"
                    : "the VMA lacks VM_ALLOW_ANY_UNCACHED, so KVM cannot use Normal-NC";
            Report($"{faults.Count} fault(s) mapped {vma.Text} as Device: {why}", [seq, .. faults]);
        }
    }
}
