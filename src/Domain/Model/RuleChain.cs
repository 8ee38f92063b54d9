using System.Collections.Concurrent;

namespace Audit.Domain.Model;

/// <summary>One rule of a decision: the rule's catalogue entry and the one function that applies it.</summary>
/// <param name="Apply">Reads and updates the decision's context; returns the outcome when the rule ends the decision, else null.</param>
internal sealed record RuleStep<TContext, TOutcome>(Rule Rule, Func<TContext, TOutcome?> Apply)
    where TOutcome : class;

/// <summary>
/// A decision as data: its rules in the kernel's order. <see cref="Decide"/> walks the rules that hold
/// in the policy's release (their version ranges decide, nothing else) until one ends the decision.
/// </summary>
internal sealed class RuleChain<TContext, TOutcome>(IReadOnlyList<RuleStep<TContext, TOutcome>> steps)
    where TOutcome : class
{
    private readonly ConcurrentDictionary<Policy, RuleStep<TContext, TOutcome>[]> _byPolicy = new();

    public IReadOnlyList<RuleStep<TContext, TOutcome>> Steps => steps;

    // The last policy's steps: a run decides every fault under one Policy instance, so the usual
    // lookup is a reference compare instead of hashing the policy per decision.
    // A class, so that threads replacing it never pair one policy with another's steps.
    private Last? _last;

    /// <summary>The steps that hold in the policy, in order (computed once per policy).</summary>
    public RuleStep<TContext, TOutcome>[] For(Policy policy)
    {
        if (_last is { } last && ReferenceEquals(last.Policy, policy))
        {
            return last.Steps;
        }

        var found = _byPolicy.GetOrAdd(policy, p => steps.Where(s => p.Holds(s.Rule)).ToArray());
        _last = new Last(policy, found);
        return found;
    }

    private sealed record Last(Policy Policy, RuleStep<TContext, TOutcome>[] Steps);

    public TOutcome Decide(Policy policy, TContext context)
    {
        foreach (var step in For(policy))
        {
            if (step.Apply(context) is { } outcome)
            {
                return outcome;
            }
        }

        throw new InvalidOperationException($"the rules of {typeof(TContext).Name} under {policy.Id} ended without a decision: the last rule must decide");
    }
}
