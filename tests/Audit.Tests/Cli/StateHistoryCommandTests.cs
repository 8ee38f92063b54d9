using System.Text.Json;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Cli;

/// <summary>state, history and rebuild over the temporal projections, through the real command line.</summary>
public sealed class StateHistoryCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private async Task<JsonElement> Json(params string[] args)
    {
        var r = await CliRunner.RunAsync(ConnectionString, [.. args, "--json"]);
        Assert.True(r.Exit == 0, r.Err);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    private async Task IngestGh() =>
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"), "--run", "gh")).Exit);

    [Fact]
    public async Task State_at_a_seq_or_a_time_lists_mappings_and_memslots_as_they_were()
    {
        await IngestGh();
        var end = await Json("state", "gh");
        Assert.Equal(3, end.GetProperty("stage2").GetArrayLength());
        Assert.Equal(3, end.GetProperty("memslots").GetArrayLength());
        var slot0 = end.GetProperty("memslots").EnumerateArray().Single(s => s.GetProperty("slot").GetInt32() == 0);
        Assert.Equal("KVM_MEM_LOG_DIRTY_PAGES", slot0.GetProperty("flags").GetString());

        // Before dirty logging and the BAR's munmap: the BAR is mapped Normal-NC and slot 0 logs nothing.
        var before = await Json("state", "gh", "--at", "19");
        Assert.Contains(before.GetProperty("stage2").EnumerateArray(), s => s.GetProperty("memType").GetString() == "NormalNC" && s.GetProperty("gpa").GetString() == "0x10000000");
        Assert.Equal("none", before.GetProperty("memslots").EnumerateArray().Single(s => s.GetProperty("slot").GetInt32() == 0).GetProperty("flags").GetString());
        var byTime = await Json("state", "gh", "--at", "2026-03-02T10:00:00.012Z");
        Assert.Equal(before.GetProperty("stage2").GetArrayLength(), byTime.GetProperty("stage2").GetArrayLength());

        var ranged = await Json("state", "gh", "--gpa", "0x10000000+0x1000000", "--at", "19");
        Assert.Equal(["0x10000000"], ranged.GetProperty("stage2").EnumerateArray().Select(s => s.GetProperty("gpa").GetString()));
        Assert.Single(ranged.GetProperty("memslots").EnumerateArray());
    }

    [Fact]
    public async Task History_lists_every_change_to_a_gpa_with_the_input_behind_it()
    {
        await IngestGh();
        var h = await Json("history", "gh", "0x10000040");
        var changes = h.GetProperty("changes").EnumerateArray().ToList();
        Assert.Equal(changes.Select(c => c.GetProperty("seq").GetInt64()).Order(), changes.Select(c => c.GetProperty("seq").GetInt64()));
        Assert.Contains(changes, c => c.GetProperty("projection").GetString() == "vmas" && c.GetProperty("type").GetString() == "VmaMapped");
        Assert.Contains(changes, c => c.GetProperty("projection").GetString() == "memslots/0");
        var fault = changes.Single(c => c.GetProperty("type").GetString() == "FaultResolved");
        Assert.Equal("GuestFaulted", fault.GetProperty("input").GetProperty("type").GetString());
        Assert.Contains("NormalNC 2M rw-", fault.GetProperty("change").GetString(), StringComparison.Ordinal);
        var unmap = changes.Last();
        Assert.Equal(("Stage2Unmapped", "VmaUnmapped"), (unmap.GetProperty("type").GetString(), unmap.GetProperty("input").GetProperty("type").GetString()));
    }

    [Fact]
    public async Task A_rebuild_gives_byte_identical_answers()
    {
        await IngestGh();
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Path.Combine(Paths.Samples, "x86-snp.ndjson"), "--run", "snp")).Exit);
        string[][] queries =
        [
            ["state", "gh", "--json"], ["state", "gh", "--at", "17", "--json"], ["why", "gh", "0x40000200000", "--json"], ["why", "gh", "0x10000040", "--json"],
            ["why", "gh", "0x10000040", "--at", "20", "--json"], ["history", "gh", "0x40400000", "--json"], ["state", "snp", "--json"], ["why", "snp", "0x200000", "--at", "13", "--json"],
        ];
        var before = new List<string>();
        foreach (var q in queries)
        {
            before.Add((await CliRunner.RunAsync(ConnectionString, q)).Out);
        }

        var rebuild = await CliRunner.RunAsync(ConnectionString, "rebuild");
        Assert.Equal(0, rebuild.Exit);
        Assert.Contains("generation 2", rebuild.Out, StringComparison.Ordinal);
        for (var i = 0; i < queries.Length; i++)
        {
            Assert.Equal(before[i], (await CliRunner.RunAsync(ConnectionString, queries[i])).Out);
        }

        Assert.Equal(1, (await CliRunner.RunAsync(ConnectionString, "rebuild", "nope")).Exit);
    }
}
