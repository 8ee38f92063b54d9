using System.Text.Json.Serialization;

namespace Audit.Api.Features.Lint;

/// <summary>How bad a finding is; the order is the order of `--fail-on`.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Severity>))]
public enum Severity { Note, Warning, Error }

/// <summary>What a lint rule is, once per rule: the catalogue entry SARIF and docs/rules.md show.</summary>
/// <param name="Id">Stable: CI systems and suppressions key on it.</param>
public sealed record LintRuleInfo(string Id, Severity Severity, string Title, string Description, string Help);

/// <summary>One finding: a rule, a one-line message, the events it cites (seq) and what to do.</summary>
public sealed record Finding(string RuleId, Severity Severity, string Message, IReadOnlyList<long> Seqs, string Fix);

public sealed record LintSummary(int Errors, int Warnings, int Notes);

/// <summary>The body of `lint --json` and GET /runs/{run}/lint.</summary>
public sealed record LintReport(string Run, string Policy, LintSummary Summary, IReadOnlyList<Finding> Findings)
{
    public static LintReport Of(string run, string policy, IReadOnlyList<Finding> findings) => new(run, policy,
        new LintSummary(findings.Count(f => f.Severity == Severity.Error), findings.Count(f => f.Severity == Severity.Warning), findings.Count(f => f.Severity == Severity.Note)),
        findings);

    /// <summary>Whether some finding is at or above <paramref name="threshold"/> (null: never fail).</summary>
    public bool Fails(Severity? threshold) => threshold is { } t && Findings.Any(f => f.Severity >= t);
}
