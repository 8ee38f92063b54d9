using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint;

/// <summary>
/// A lint rule: it watches the recorded steps of one run (with the state before each) and the state
/// at the end, and reports findings. One instance per lint, so a rule may keep what it has seen.
/// </summary>
public abstract class LintRule
{
    private readonly List<Finding> _findings = [];

    public abstract LintRuleInfo Info { get; }

    public IReadOnlyList<Finding> Findings => _findings;

    /// <summary>Called for every input, in order, with the state just before it.</summary>
    public virtual void Observe(LintStep step, RunState before)
    {
    }

    /// <summary>Called once with the state after the last event.</summary>
    public virtual void Finish(RunState end)
    {
    }

    protected void Report(string message, IEnumerable<long> seqs, string? fix = null) =>
        _findings.Add(new Finding(Info.Id, Info.Severity, message, seqs.Distinct().Order().ToList(), fix ?? Info.Help));

    /// <summary>The rule id of the step that ended a decision: for a refusal, the rule that refused.</summary>
    protected static string? DecidingRule(DerivedEvent? d) => Explanation(d) is { Count: > 0 } steps ? steps[^1].Rule : null;

    protected static string DecidingText(DerivedEvent? d) => Explanation(d) is { Count: > 0 } steps ? steps[^1].Text : "";

    /// <summary>The errno the model predicted for a decision (0: accepted or mapped).</summary>
    protected static int ErrnoOf(DerivedEvent? d) => d switch
    {
        MemslotDecided m => m.PredictedErrno,
        FaultResolved f => f.Errno,
        IoctlDecided i => i.PredictedErrno,
        _ => 0,
    };

    protected static bool Cites(DerivedEvent? d, Rule rule) => Explanation(d)?.Any(s => s.Rule == rule.Id) == true;

    private static IReadOnlyList<ExplanationStep>? Explanation(DerivedEvent? d) => d switch
    {
        FaultResolved f => f.Explanation,
        MemslotDecided m => m.Explanation,
        IoctlDecided i => i.Explanation,
        _ => null,
    };

    /// <summary>The VMAs under a memslot's hva range (state before or after a step).</summary>
    protected static IEnumerable<VmaState> VmasUnder(RunState s, MemslotState slot) =>
        s.Vmas.Overlapping(slot.Hva.Value, slot.Hva.Value + slot.Size).Select(i => i.Value);

    protected static IEnumerable<VmaState> VmasUnder(RunState s, MemslotSet m) =>
        s.Vmas.Overlapping(m.Hva.Value, m.Hva.Value + m.Size).Select(i => i.Value);
}
