using System.Text.Json;
using Audit.Api.Http;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Replay;

/// <summary>`audit replay --set` on the bundled GH200 run, stored in a real PostgreSQL.</summary>
public sealed class WhatIfCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private Task<JsonElement> Json(params string[] args) => CliRunner.JsonAsync(ConnectionString, args);

    private Task IngestGh() => CliRunner.IngestSampleAsync(ConnectionString, "gh200-gpu-passthrough.ndjson", "gh");

    [Fact]
    public async Task Dropping_vm_allow_any_uncached_from_the_bar_makes_it_device_under_the_runs_own_policy()
    {
        await IngestGh();
        var r = await Json("replay", "gh", "--set", "vma[0xfffd00000000].flags-=VM_ALLOW_ANY_UNCACHED");
        Assert.Equal("arm64/6.17", r.GetProperty("policy").GetString());
        var d = Assert.Single(r.GetProperty("differences").EnumerateArray());
        Assert.Equal(("NormalNC", "Device"), (d.GetProperty("before").GetProperty("memType").GetString(), d.GetProperty("after").GetProperty("memType").GetString()));
        Assert.Equal([9L], r.GetProperty("edits")[0].GetProperty("seqs").EnumerateArray().Select(s => s.GetInt64()).ToList());
    }

    [Fact]
    public async Task A_host_without_fwb_refuses_the_gpu_memslot_and_the_saved_run_says_why()
    {
        await IngestGh();
        var r = await Json("replay", "gh", "--policy", "arm64/6.17", "--set", "host.fwb=false", "--save", "gh-nofwb");
        var diffs = r.GetProperty("differences").EnumerateArray().ToDictionary(x => x.GetProperty("inputSeq").GetInt64());
        Assert.Equal("refused", diffs[7].GetProperty("after").GetProperty("outcome").GetString());
        Assert.Equal("arm64.kvm_arch_prepare_memory_region.cacheable_pfnmap", diffs[7].GetProperty("partsAt").GetString());

        var exported = (await CliRunner.RunAsync(ConnectionString, "export", "gh-nofwb")).Out;
        var host = exported.Split('\n').Select(l => l.Trim()).First(l => l.Contains("\"HostDescribed\"", StringComparison.Ordinal));
        Assert.Contains("\"whatIf\":\"host.fwb=false (recorded: true)\"", host, StringComparison.Ordinal);
        Assert.Contains("\"fwb\":false", host, StringComparison.Ordinal);
        var lint = await Json("lint", "gh-nofwb", "--fail-on", "never");
        Assert.Contains(lint.GetProperty("findings").EnumerateArray(), f => f.GetProperty("ruleId").GetString() == "cacheable-pfnmap-unguaranteed");
    }

    [Fact]
    public async Task A_bad_edit_is_exit_2_naming_it_and_stores_nothing()
    {
        await IngestGh();
        var bad = await CliRunner.RunAsync(ConnectionString, "replay", "gh", "--set", "vma[0x1234].flags+=VM_IO", "--save", "x");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("vma[0x1234]", bad.Err, StringComparison.Ordinal);
        Assert.Equal(1, (await CliRunner.RunAsync(ConnectionString, "why", "x", "0x0")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "replay", "gh", "--set", "host.fwb=perhaps")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "replay", "gh")).Exit);
    }

    [Fact]
    public async Task Http_replay_accepts_the_same_edits_and_answers_400_naming_a_bad_one()
    {
        await IngestGh();
        var app = HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        await using var _ = app;
        var client = app.GetTestClient();

        var ok = await client.PostAsync("/runs/gh/replay?set=" + Uri.EscapeDataString("host.fwb=false") + "&set=" + Uri.EscapeDataString("memslot[0].flags-=KVM_MEM_LOG_DIRTY_PAGES"), null);
        var text = await ok.Content.ReadAsStringAsync();
        Assert.True(ok.IsSuccessStatusCode, text);
        var body = JsonDocument.Parse(text).RootElement;
        Assert.Equal(2, body.GetProperty("edits").GetArrayLength());
        Assert.Equal(4, body.GetProperty("summary").GetProperty("differing").GetInt32());

        var bad = await client.PostAsync("/runs/gh/replay?set=" + Uri.EscapeDataString("memslot[x].flags+=KVM_MEM_READONLY"), null);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("memslot[x]", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
