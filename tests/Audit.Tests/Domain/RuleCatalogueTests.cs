using System.Text.RegularExpressions;
using Audit.Domain.Model;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Domain;

public sealed partial class RuleCatalogueTests
{
    [GeneratedRegex(@"^\| `(?<id>[^`]+)` \| `(?<fn>[^`]+)` \| (?<file>[^|]+) \| (?<k>[^|]+) \| (?<fl>[^|]+) \| (?<ch>[^|]+) \| (?<src>[^|]+) \|$")]
    private static partial Regex Row();

    private static Dictionary<string, (string Fn, string File, string Kernels, string Flavours, string Change, string Checked)> Catalogue() =>
        File.ReadAllLines(Path.Combine(Paths.Repo, "docs", "rules.md"))
            .Select(l => Row().Match(l))
            .Where(m => m.Success)
            .ToDictionary(m => m.Groups["id"].Value, m => (m.Groups["fn"].Value, m.Groups["file"].Value.Trim(), m.Groups["k"].Value.Trim(),
                m.Groups["fl"].Value.Trim(), m.Groups["ch"].Value.Trim(), m.Groups["src"].Value.Trim()));

    [Fact]
    public void Docs_rules_md_lists_exactly_the_rules_in_code_with_the_same_kernel_references_and_releases()
    {
        var rows = Catalogue();
        Assert.Equal(Rules.All.Select(r => r.Id).Order(), rows.Keys.Order());
        foreach (var r in Rules.All)
        {
            var row = rows[r.Id];
            Assert.Equal((r.Function, r.File, r.Kernels, r.Flavours, r.Change ?? "-"), (row.Fn, row.File, row.Kernels, row.Flavours, row.Change));
            Assert.False(string.IsNullOrWhiteSpace(row.Checked), $"{r.Id} says what it was checked against");
        }
    }

    [Fact]
    public void Every_rule_bounded_by_a_release_names_the_change_at_the_boundary()
    {
        Assert.All(Rules.All.Where(r => r.Since is not null || r.Until is not null), r => Assert.False(string.IsNullOrWhiteSpace(r.Change), r.Id));
        Assert.All(Rules.All.Where(r => r.Since is { } s && r.Until is { } u), r => Assert.True(r.Since < r.Until, r.Id));
    }

    [Fact]
    public void Rule_ids_are_unique_and_name_a_kernel_function()
    {
        Assert.Equal(Rules.All.Count, Rules.All.Select(r => r.Id).Distinct().Count());
        Assert.All(Rules.All, r => Assert.Matches(@"^[a-z0-9_]+(\.[a-z0-9_]+)*$", r.Id));
        Assert.All(Rules.All, r => Assert.False(string.IsNullOrWhiteSpace(r.Function)));
    }

    [Fact]
    public void Every_policy_id_of_the_catalogue_is_documented()
    {
        var doc = File.ReadAllText(Path.Combine(Paths.Repo, "docs", "rules.md"));
        Assert.All(Policies.All.Select(p => p == Policies.X86Svm ? "x86-svm" : p == Policies.X86Shadow ? "x86-shadow" : p.Id),
            id => Assert.Contains($"| `{id}` |", doc, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_rule_of_the_arm64_fault_chain_is_in_the_catalogue_and_the_chain_ends_with_the_map()
    {
        var steps = Audit.Domain.Model.Rules.All;
        Assert.Equal(Rules.Arm64Map, ArmChain.Last());
        Assert.All(ArmChain, r => Assert.Contains(r, steps));
    }

    private static IReadOnlyList<Rule> ArmChain => Audit.Domain.Stage2.Arm64FaultChain.Rules;
}
