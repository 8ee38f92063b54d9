using System.Text.RegularExpressions;
using Audit.Domain.Model;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Domain;

public sealed partial class RuleCatalogueTests
{
    [GeneratedRegex(@"^\| `(?<id>[^`]+)` \| `(?<fn>[^`]+)` \| (?<file>[^|]+) \| (?<k>[^|]+) \|$")]
    private static partial Regex Row();

    [Fact]
    public void Docs_rules_md_lists_exactly_the_rules_in_code_with_the_same_kernel_references()
    {
        var rows = File.ReadAllLines(Path.Combine(Paths.Repo, "docs", "rules.md"))
            .Select(l => Row().Match(l))
            .Where(m => m.Success)
            .ToDictionary(m => m.Groups["id"].Value, m => (Fn: m.Groups["fn"].Value, File: m.Groups["file"].Value.Trim(), Kernels: m.Groups["k"].Value.Trim()));

        Assert.Equal(Rules.All.Select(r => r.Id).Order(), rows.Keys.Order());
        foreach (var r in Rules.All)
        {
            Assert.Equal((r.Function, r.File, r.Kernels), rows[r.Id]);
        }
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
        Assert.All(Policies.All, p => Assert.Contains($"| `{p.Id}` |", doc, StringComparison.Ordinal));
    }
}
