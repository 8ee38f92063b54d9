using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// A shared/private conversion that failed (KVM_SET_MEMORY_ATTRIBUTES, or the proposed in-place
/// guest_memfd conversion): the guest believes the page changed hands while KVM did not change it.
/// </summary>
public sealed class GmemConversionFailed : LintRule
{
    public override LintRuleInfo Info { get; } = new(
        "gmem-conversion-failed", Severity.Error,
        "A private/shared conversion failed",
        "KVM_SET_MEMORY_ATTRIBUTES or a guest_memfd conversion failed (in the model or in the recorded result). The range keeps its old shareability, and the next guest access to it exits again.",
        "Read the refusing rule: fix the range's alignment or flags, or retry a conversion refused with -EAGAIN after the other references to the pages are gone.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not (MemoryAttributesSet or GuestMemfdConverted) || step.Decision is not IoctlDecided d)
        {
            return;
        }

        var errno = d.PredictedErrno != 0 ? d.PredictedErrno : d.RecordedErrno ?? 0;
        if (errno != 0)
        {
            var what = step.Input switch
            {
                MemoryAttributesSet a => $"{d.Ioctl} of [{a.Gpa}, +{Fmt.Size(a.Size)}) to {(a.Private ? "private" : "shared")}",
                GuestMemfdConverted c => $"{d.Ioctl} of guest_memfd {c.Fd} offset {Fmt.Hex(c.Offset)} to {c.To.ToString().ToLowerInvariant()}",
                _ => d.Ioctl,
            };
            var by = d.PredictedErrno != 0 ? $"{DecidingText(d)} [{DecidingRule(d)}]" : "the kernel refused it (recorded result)";
            Report($"{what} fails with {Errno.Format(errno)}: {by}", [step.Seq]);
        }
    }
}
