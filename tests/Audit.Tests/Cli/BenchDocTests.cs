using Audit.Api.Features.Bench;

namespace Audit.Tests.Cli;

/// <summary>docs/benchmarks.md: a run replaces its mode's section and keeps the others and every note.</summary>
public sealed class BenchDocTests
{
    private const string Existing = """
        # Benchmarks

        intro

        ## full run, 2026-12-03 08:43 UTC, 10,000,000 events

        old full table

        ## quick run, 2026-12-02 08:05 UTC, 1,000,000 events

        quick table

        ## Notes on the full run of 2026-12-03 08:43

        - newer note

        ## Notes on the full run of 2026-12-02 16:44

        - older note
        """;

    [Fact]
    public void A_full_run_replaces_the_full_section_and_keeps_the_quick_section_and_both_notes_in_order()
    {
        var doc = BenchCommand.Merge(Existing, "full", "## full run, 2026-12-03 10:54 UTC, 10,000,000 events\n\nnew full table\n");

        Assert.DoesNotContain("old full table", doc);
        Assert.Contains("new full table", doc);
        Assert.Contains("quick table", doc);
        var newer = doc.IndexOf("- newer note", StringComparison.Ordinal);
        var older = doc.IndexOf("- older note", StringComparison.Ordinal);
        Assert.True(newer > doc.IndexOf("quick table", StringComparison.Ordinal) && older > newer, doc);
        Assert.Equal(doc, BenchCommand.Merge(doc, "full", "## full run, 2026-12-03 10:54 UTC, 10,000,000 events\n\nnew full table\n"));
    }

    [Fact]
    public void A_first_run_writes_the_header_and_its_section()
    {
        var doc = BenchCommand.Merge(null, "quick", "## quick run, now\n\ntable\n");
        Assert.StartsWith("# Benchmarks", doc);
        Assert.Contains("## quick run, now", doc);
    }
}
