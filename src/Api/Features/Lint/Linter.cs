using Audit.Api.Features.Lint.Rules;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint;

/// <summary>Runs every lint rule over one stored run. Pure: events in, findings out.</summary>
public static class Linter
{
    /// <summary>Fresh instances of every rule, in catalogue order (docs/rules.md, "Lint rules").</summary>
    public static IReadOnlyList<LintRule> CreateRules() =>
    [
        new CacheablePfnmapUnguaranteed(),
        new DeviceNotNormalNc(),
        new ExecNonCacheable(),
        new MteNotAllowed(),
        new MemslotNotCongruent(),
        new ThpDisabledGuestRam(),
        new DirtyLogLeftOn(),
        new BlocksNotRebuilt(),
        new GmemRepeatedMismatch(),
        new GmemConversionFailed(),
        new GmemSlotClosed(),
        new ModelDivergence(),
        new MemslotRefused(),
    ];

    public static IReadOnlyList<LintRuleInfo> Catalogue { get; } = CreateRules().Select(r => r.Info).ToList();

    /// <param name="policy">The policy the run was decided under: the state is folded with it.</param>
    public static LintReport Lint(string run, Policy policy, IReadOnlyList<Recorded> events)
    {
        var rules = CreateRules();
        var end = LintStep.Walk(policy, events, (step, before) =>
        {
            foreach (var rule in rules)
            {
                rule.Observe(step, before);
            }
        });
        foreach (var rule in rules)
        {
            rule.Finish(end);
        }

        var findings = rules.SelectMany(r => r.Findings)
            .OrderByDescending(f => f.Severity).ThenBy(f => f.Seqs.Count > 0 ? f.Seqs[0] : 0).ThenBy(f => f.RuleId, StringComparer.Ordinal)
            .ToList();
        return LintReport.Of(run, policy.Id, findings);
    }
}
