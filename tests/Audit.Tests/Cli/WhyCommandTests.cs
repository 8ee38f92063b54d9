using System.Text.Json;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Cli;

/// <summary>`why` over stored runs, and the stored decisions against a fresh re-decision.</summary>
public sealed class WhyCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private async Task Ingest(string sample, string run)
    {
        var r = await CliRunner.RunAsync(ConnectionString, "ingest", Path.Combine(Paths.Samples, sample), "--run", run);
        Assert.Equal(0, r.Exit);
    }

    private async Task<JsonElement> Why(string run, string gpa, params string[] extra)
    {
        var r = await CliRunner.RunAsync(ConnectionString, ["why", run, gpa, "--json", .. extra]);
        Assert.True(r.Exit == 0, r.Err);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    [Fact]
    public async Task Why_gh_gpu_memory_answers_normal_1g_rwx_citing_the_vma_the_memslot_and_the_host_caps()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        var w = await Why("gh", "0x40000200000");
        var m = w.GetProperty("mapping");
        Assert.Equal(("Normal", 1UL << 30, "rwx", "0x40000000000", "arm64/6.17"),
            (m.GetProperty("memType").GetString(), m.GetProperty("size").GetUInt64(), m.GetProperty("perms").GetString(), m.GetProperty("gpa").GetString(), m.GetProperty("policy").GetString()));
        Assert.Equal(JsonValueKind.Null, m.GetProperty("ipat").ValueKind);
        Assert.Equal("mapped", w.GetProperty("outcome").GetString());
        Assert.Equal("0x40000200000", w.GetProperty("gpa").GetString());

        var facts = w.GetProperty("explanation").EnumerateArray().SelectMany(s => s.GetProperty("facts").EnumerateArray()).ToList();
        long SeqOfLine(string type) => Array.FindIndex(File.ReadAllLines(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson")).Where(l => l.StartsWith('{')).ToArray(), l => l.Contains(type, StringComparison.Ordinal)) + 1;
        var seqs = facts.Where(f => f.GetProperty("seq").ValueKind == JsonValueKind.Number).Select(f => (f.GetProperty("name").GetString(), f.GetProperty("seq").GetInt64())).ToList();
        Assert.Contains(("host.caps.fwb", SeqOfLine("HostDescribed")), seqs);
        Assert.Contains(seqs, s => s.Item1 == "vma.flags" && s.Item2 == 6);
        Assert.Contains(seqs, s => s.Item1 == "memslot" && s.Item2 == 7);
        Assert.Equal(m.GetProperty("decidedAt").GetInt64(), w.GetProperty("lastChange").GetProperty("seq").GetInt64());
        Assert.Equal("FaultResolved", w.GetProperty("lastChange").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Why_without_a_mapping_names_the_event_that_removed_or_refused_it()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        var bar = await Why("gh", "0x10000040");
        Assert.Equal(JsonValueKind.Null, bar.GetProperty("mapping").ValueKind);
        Assert.Equal("unmapped", bar.GetProperty("outcome").GetString());
        Assert.Equal("Stage2Unmapped", bar.GetProperty("lastChange").GetProperty("type").GetString());
        Assert.Contains("kvm_mmu_notifier_invalidate_range_start", bar.GetProperty("explanation")[0].GetProperty("rule").GetString(), StringComparison.Ordinal);

        // Before the munmap the BAR was Normal-NC; at the exec fault it was refused but stayed mapped.
        var before = await Why("gh", "0x10000040", "--at", "20");
        Assert.Equal("NormalNC", before.GetProperty("mapping").GetProperty("memType").GetString());
        Assert.Equal("never_faulted", (await Why("gh", "0x99999000")).GetProperty("outcome").GetString());

        // By time: just after the BAR write fault was recorded (10:00:00.011) it is mapped.
        var byTime = await Why("gh", "0x10000040", "--at", "2026-03-02T10:00:00.0115Z");
        Assert.Equal("NormalNC", byTime.GetProperty("mapping").GetProperty("memType").GetString());
    }

    [Fact]
    public async Task Why_reports_memory_fault_exits_on_the_snp_sample()
    {
        await Ingest("x86-snp.ndjson", "snp");
        var w = await Why("snp", "0x1000");
        Assert.Equal(("WB", false, "rwx"), (w.GetProperty("mapping").GetProperty("memType").GetString(), w.GetProperty("mapping").GetProperty("ipat").GetBoolean(), w.GetProperty("mapping").GetProperty("perms").GetString()));
        var exit = await Why("snp", "0x200000", "--at", "13");
        Assert.Equal("memory_fault_exit", exit.GetProperty("outcome").GetString());
        Assert.Contains(exit.GetProperty("explanation").EnumerateArray(), s => s.GetProperty("rule").GetString() == Rules.X86PrivateMismatch.Id);
    }

    [Fact]
    public async Task Why_exits_1_for_an_unknown_run_and_2_for_a_bad_address()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        Assert.Equal(1, (await CliRunner.RunAsync(ConnectionString, "why", "nope", "0x1000")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "why", "gh", "0xZZ")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "why", "gh", "0x1000", "--at", "yesterday")).Exit);
    }

    [Fact]
    public async Task Re_deciding_a_stored_run_from_its_inputs_reproduces_its_stored_decisions_exactly()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        await Ingest("x86-snp.ndjson", "snp");
        var store = Store();
        foreach (var run in new[] { "gh", "snp" })
        {
            var stored = new List<StoredEvent>();
            await foreach (var e in store.ReadAsync(run))
            {
                stored.Add(e);
            }

            var policy = Policies.Find((await store.GetRunAsync(run))!.Policy!)!;
            var state = Engine.Start(policy);
            var redecided = new List<(long Seq, RunEvent Event)>();
            var seq = 0L;
            foreach (var e in stored.Where(e => e.Event is InputEvent))
            {
                seq++;
                Assert.Equal(seq, e.Seq);
                redecided.Add((seq, e.Event));
                foreach (var d in Engine.Step(state, seq, (InputEvent)e.Event))
                {
                    redecided.Add((++seq, d));
                }
            }

            Assert.Equal(stored.Select(e => (e.Seq, e.Event)), redecided);
            Assert.Contains(stored, e => e.Event is FaultResolved);
        }
    }
}
