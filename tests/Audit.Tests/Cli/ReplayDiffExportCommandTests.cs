using System.Text.Json;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Cli;

public sealed class ReplayDiffExportCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private async Task<JsonElement> Json(params string[] args)
    {
        var r = await CliRunner.RunAsync(ConnectionString, [.. args, "--json"]);
        Assert.True(r.Exit == 0, r.Err);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    private async Task Ingest(string file, string run) =>
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", file, "--run", run)).Exit);

    [Fact]
    public async Task Replay_under_5_14_shows_the_gpu_memory_and_the_bar_as_device()
    {
        await Ingest(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"), "gh");
        var r = await Json("replay", "gh", "--policy", "arm64/5.14");
        Assert.Equal(("arm64/5.14", "arm64/6.17"), (r.GetProperty("policy").GetString(), r.GetProperty("recordedPolicy").GetString()));
        var diffs = r.GetProperty("differences").EnumerateArray().ToDictionary(d => d.GetProperty("inputSeq").GetInt64());
        Assert.Equal(("Normal", "Device"), (diffs[14].GetProperty("before").GetProperty("memType").GetString(), diffs[14].GetProperty("after").GetProperty("memType").GetString()));
        Assert.Equal(("NormalNC", "Device"), (diffs[16].GetProperty("before").GetProperty("memType").GetString(), diffs[16].GetProperty("after").GetProperty("memType").GetString()));
        Assert.Equal("arm64.user_mem_abort.device_linear_map", diffs[14].GetProperty("partsAt").GetString());
        Assert.Equal(2, r.GetProperty("summary").GetProperty("differing").GetInt32());

        // The same policy changes nothing; an unknown one or another architecture's is bad input.
        Assert.Equal(0, (await Json("replay", "gh", "--policy", "arm64/6.17")).GetProperty("summary").GetProperty("differing").GetInt32());
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "replay", "gh", "--policy", "arm64/9.99")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "replay", "gh", "--policy", "x86-svm")).Exit);
    }

    [Fact]
    public async Task A_saved_what_if_run_is_queryable_and_diffs_against_its_source()
    {
        await Ingest(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"), "gh");
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "replay", "gh", "--policy", "arm64/6.9", "--save", "gh69")).Exit);
        var why = await Json("why", "gh69", "0x40000200000");
        Assert.Equal(("Device", "arm64/6.9"), (why.GetProperty("mapping").GetProperty("memType").GetString(), why.GetProperty("mapping").GetProperty("policy").GetString()));

        var diff = await Json("diff", "gh", "gh69");
        Assert.Equal(1, diff.GetProperty("differing").GetInt32());
        Assert.Equal("gpa 0x40000200000", diff.GetProperty("first").GetProperty("key").GetString());
        Assert.Contains(diff.GetProperty("inputs").EnumerateArray(), i => i.GetProperty("what").GetString() == "policy");
        Assert.Equal(0, (await Json("diff", "gh", "gh")).GetProperty("differing").GetInt32());
        Assert.Equal(1, (await CliRunner.RunAsync(ConnectionString, "diff", "gh", "nope")).Exit);
    }

    [Fact]
    public async Task An_ndjson_export_re_imports_to_identical_why_answers()
    {
        await Ingest(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"), "gh");
        await Ingest(Path.Combine(Paths.Samples, "x86-snp.ndjson"), "snp");
        foreach (var (run, gpas) in new[] { ("gh", new[] { "0x40000200000", "0x10000040", "0x40400000", "0x40080000" }), ("snp", new[] { "0x1000", "0x200000" }) })
        {
            var file = Path.Combine(Path.GetTempPath(), $"{run}-{Guid.NewGuid():N}.ndjson");
            Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "export", run, "-o", file)).Exit);
            await Ingest(file, run + "-again");
            File.Delete(file);
            foreach (var gpa in gpas)
            {
                var a = (await CliRunner.RunAsync(ConnectionString, "why", run, gpa, "--json")).Out.Replace($"\"run\": \"{run}\"", "\"run\": \"X\"", StringComparison.Ordinal);
                var b = (await CliRunner.RunAsync(ConnectionString, "why", run + "-again", gpa, "--json")).Out.Replace($"\"run\": \"{run}-again\"", "\"run\": \"X\"", StringComparison.Ordinal);
                Assert.Equal(a, b);
            }
        }
    }

    [Fact]
    public async Task An_export_to_a_path_that_cannot_be_written_is_exit_2_naming_it()
    {
        await Ingest(Path.Combine(Paths.Samples, "x86-snp.ndjson"), "snp");
        var target = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}", "snp.ndjson");
        var r = await CliRunner.RunAsync(ConnectionString, "export", "snp", "-o", target);
        Assert.Equal(2, r.Exit);
        Assert.StartsWith($"audit: cannot write {target}: ", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_perfetto_export_is_a_valid_trace_event_document()
    {
        await Ingest(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"), "gh");
        var r = await CliRunner.RunAsync(ConnectionString, "export", "gh", "--format", "perfetto");
        Assert.Equal(0, r.Exit);
        var doc = JsonDocument.Parse(r.Out).RootElement;
        var events = doc.GetProperty("traceEvents").EnumerateArray().ToList();
        Assert.All(events, e =>
        {
            Assert.Contains(e.GetProperty("ph").GetString(), new[] { "M", "b", "e", "i" });
            Assert.Equal(JsonValueKind.Number, e.GetProperty("pid").ValueKind);
            Assert.Equal(JsonValueKind.Number, e.GetProperty("tid").ValueKind);
            if (e.GetProperty("ph").GetString() != "M")
            {
                Assert.True(e.GetProperty("ts").GetDouble() >= 0);
            }
        });

        // Every async slice begins once and ends once, in time order, and names its memory type.
        var begins = events.Where(e => e.GetProperty("ph").GetString() == "b").ToDictionary(e => e.GetProperty("id").GetInt64());
        var ends = events.Where(e => e.GetProperty("ph").GetString() == "e").ToDictionary(e => e.GetProperty("id").GetInt64());
        Assert.Equal(begins.Keys.Order(), ends.Keys.Order());
        Assert.All(begins, b => Assert.True(ends[b.Key].GetProperty("ts").GetDouble() >= b.Value.GetProperty("ts").GetDouble()));
        Assert.Contains(begins.Values, b => b.GetProperty("cat").GetString() == "NormalNC");
        Assert.Contains(events, e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("args").GetProperty("name").GetString()!.StartsWith("memslot", StringComparison.Ordinal));
        Assert.Contains(events, e => e.GetProperty("ph").GetString() == "i" && e.GetProperty("args").GetProperty("why").GetString()!.Length > 0);
    }
}
