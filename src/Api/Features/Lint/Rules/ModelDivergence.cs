using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>Each place where the kernel did something else than the model predicted: either the model or the trace is wrong.</summary>
public sealed class ModelDivergence : LintRule
{
    public override LintRuleInfo Info { get; } = new(
        "model-divergence", Severity.Error,
        "The kernel did something the model did not predict",
        "An observation in the trace (an ioctl result, a stage-2 entry, a memory-fault exit) disagrees with the model's decision for the same input. Either the host kernel behaves differently from the modelled release, or the trace misses an input.",
        "Compare the decision (`audit why RUN GPA --at SEQ`) with the kernel source of the host's release; if the model is wrong, report it with the run exported (`audit export RUN`).");

    public override void Observe(LintStep step, RunState before)
    {
        foreach (var d in step.Derived.Where(d => d.Event is DivergenceFound))
        {
            var x = (DivergenceFound)d.Event;
            Report($"the model decided {x.Model}, the kernel {x.Kernel}", [x.InputSeq, step.Seq, d.Seq]);
        }
    }
}
