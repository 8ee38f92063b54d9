using Audit.Domain;
using Audit.Domain.Events;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Import;

/// <summary>Captures without a HostDescribed event import with no flags, under the host their events show.</summary>
public sealed class HostInferenceTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static string Real(string name) => Path.Combine(Paths.Samples, "real", "x86-pvm-6.18", name);

    /// <summary>A decision without the sequence numbers it points at (the inferred host shifts them by one) and with its rules by id.</summary>
    private static object Decision(DerivedEvent e) => e switch
    {
        FaultResolved f => (f with { InputSeq = 0, Explanation = ValueList<ExplanationStep>.Empty }, string.Join(",", f.Explanation.Select(s => s.Rule))),
        MemslotDecided m => (m with { InputSeq = 0, Explanation = ValueList<ExplanationStep>.Empty }, string.Join(",", m.Explanation.Select(s => s.Rule))),
        IoctlDecided i => (i with { InputSeq = 0, Explanation = ValueList<ExplanationStep>.Empty }, string.Join(",", i.Explanation.Select(s => s.Rule))),
        DivergenceFound d => d with { InputSeq = 0, Model = System.Text.RegularExpressions.Regex.Replace(d.Model, @"seq \d+", "seq N") },
        Stage2Unmapped u => u with { CauseSeq = 0 },
        Stage2WriteProtected w => w with { CauseSeq = 0 },
        _ => e.GetType().Name,
    };

    private async Task<List<object>> DecisionsAsync(string run)
    {
        var list = new List<object>();
        await foreach (var e in Store().ReadAsync(run))
        {
            if (e.Event is DerivedEvent d)
            {
                list.Add(Decision(d));
            }
        }

        return list;
    }

    [Theory]
    [InlineData("trace.txt")]
    [InlineData("trace_fields.txt")]
    [InlineData("perf_script.txt")]
    [InlineData("strace.txt", "bpftrace_ioctls.txt", "trace.txt", "smaps_phase1.txt")]
    public async Task The_real_capture_imports_with_no_flags_and_decides_as_under_the_right_policy(params string[] files)
    {
        // One pair of runs per file set: the rows of this theory share the class's schema.
        var set = Path.GetFileNameWithoutExtension(files[0]) + "-" + files.Length;
        var inferred = await CliRunner.RunAsync(ConnectionString, ["ingest", .. files.Select(Real), "--run", "inferred-" + set]);
        Assert.True(inferred.Exit == 0, inferred.Err);
        Assert.Contains("host inferred from the trace (no HostDescribed event): x86_64 6.18 shadow paging, decided under x86-shadow", inferred.Out, StringComparison.Ordinal);
        Assert.Contains("kvm_mmu_get_page of an indirect shadow page", inferred.Out, StringComparison.Ordinal);
        Assert.Contains("ASSUMED kernel 6.18", inferred.Out, StringComparison.Ordinal);
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, ["ingest", .. files.Select(Real), "--run", "named-" + set, "--policy", "x86-shadow"])).Exit);

        var expected = await DecisionsAsync("named-" + set);
        Assert.NotEmpty(expected);
        var actual = await DecisionsAsync("inferred-" + set);
        var first = Enumerable.Range(0, Math.Min(expected.Count, actual.Count)).FirstOrDefault(i => !Equals(expected[i], actual[i]), -1);
        Assert.True(first < 0 && expected.Count == actual.Count, first < 0 ? $"{expected.Count} vs {actual.Count} decisions" : $"decision {first}: {expected[first]} vs {actual[first]}");
        Assert.Equal(1, await ScalarAsync("select count(*) from events where run_id = $1 and type = 'host_described' and payload->>'inferred' like '%shadow paging%'", "inferred-" + set));
        Assert.Equal(0, await ScalarAsync("select count(*) from events where run_id = $1 and type = 'host_described'", "named-" + set));
    }

    [Fact]
    public async Task Why_marks_a_decision_taken_under_an_inferred_host()
    {
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Real("trace.txt"), "--run", "pvm")).Exit);
        var why = await CliRunner.RunAsync(ConnectionString, "why", "pvm", "0x10000");
        Assert.True(why.Exit == 0, why.Err);
        Assert.Contains("x86_64 6.18 (inferred)", why.Out, StringComparison.Ordinal);
        var json = await CliRunner.RunAsync(ConnectionString, "why", "pvm", "0x10000", "--json");
        Assert.Equal("x86_64 6.18", System.Text.Json.JsonDocument.Parse(json.Out).RootElement.GetProperty("hostInferred").GetString());
    }

    [Fact]
    public async Task A_named_policy_overrides_the_inference_and_records_no_guess()
    {
        var r = await CliRunner.RunAsync(ConnectionString, "ingest", Real("trace.txt"), "--run", "vmx", "--policy", "x86-vmx/6.16");
        Assert.True(r.Exit == 0, r.Err);
        Assert.DoesNotContain("host inferred", r.Out, StringComparison.Ordinal);
        Assert.Contains("decided under x86-vmx/6.16", r.Out, StringComparison.Ordinal);
    }
}
