using System.Net;
using System.Text.Json;
using Audit.Api.Http;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Lint;

/// <summary>`audit lint` and GET /runs/{run}/lint on the bundled runs, stored in a real PostgreSQL.</summary>
public sealed class LintCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private Task Ingest(string file, string run) => CliRunner.IngestSampleAsync(ConnectionString, file, run);

    [Fact]
    public async Task Lint_of_gh_finds_the_bar_exec_fault_and_the_dirty_log_left_on_and_fails_only_from_warning()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        var r = await CliRunner.RunAsync(ConnectionString, "lint", "gh", "--format", "json");
        Assert.Equal(0, r.Exit);
        var findings = JsonDocument.Parse(r.Out).RootElement.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal(["dirty-log-left-on", "exec-noncacheable"], findings.Select(f => f.GetProperty("ruleId").GetString()).Order().ToList());
        Assert.All(findings, f => Assert.Equal("Warning", f.GetProperty("severity").GetString()));
        var exec = findings.Single(f => f.GetProperty("ruleId").GetString() == "exec-noncacheable");
        Assert.Contains("0x10001000", exec.GetProperty("message").GetString(), StringComparison.Ordinal);

        Assert.Equal(4, (await CliRunner.RunAsync(ConnectionString, "lint", "gh", "--fail-on", "warning")).Exit);
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "lint", "gh", "--fail-on", "never")).Exit);
        Assert.Equal(1, (await CliRunner.RunAsync(ConnectionString, "lint", "nope")).Exit);

        // A parse error's exit code belongs to the command line as a whole; the message names the value.
        var bad = await CliRunner.RunAsync(ConnectionString, "lint", "gh", "--format", "xml");
        Assert.NotEqual(0, bad.Exit);
        Assert.Contains("xml", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lint_exits_4_by_default_on_an_error_finding()
    {
        var file = Path.Combine(Path.GetTempPath(), $"refused-{Guid.NewGuid():N}.ndjson");
        await File.WriteAllLinesAsync(file,
        [
            """{"type": "HostDescribed", "arch": "arm64", "kernel": "6.17.2", "pageSize": 4096, "caps": {"fwb": false, "cacheDic": true}}""",
            """{"type": "VmCreated", "vmType": "default", "ipaBits": 48}""",
            """{"type": "VmaMapped", "start": "0xfffe00000000", "length": "0x40000000", "prot": "rw-", "flags": ["VM_SHARED", "VM_IO", "VM_PFNMAP"], "memType": "MT_NORMAL", "backing": {"kind": "vfio", "pfn": "0x40000000", "linearMap": false, "structPage": false}}""",
            """{"type": "MemslotSet", "slot": 1, "asId": 0, "gpa": "0x40000000000", "size": "0x40000000", "hva": "0xfffe00000000", "flags": []}""",
        ]);
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", file, "--run", "nofwb")).Exit);
        File.Delete(file);
        var r = await CliRunner.RunAsync(ConnectionString, "lint", "nofwb");
        Assert.Equal(4, r.Exit);
        Assert.Contains("error [cacheable-pfnmap-unguaranteed]", r.Out, StringComparison.Ordinal);
        Assert.Contains("events: seq 3, seq 4", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sarif_output_has_the_2_1_0_shape_with_rules_and_located_results()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        var r = await CliRunner.RunAsync(ConnectionString, "lint", "gh", "--format", "sarif", "--fail-on", "never");
        Assert.Equal(0, r.Exit);
        var doc = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal("2.1.0", doc.GetProperty("version").GetString());
        Assert.StartsWith("https://", doc.GetProperty("$schema").GetString(), StringComparison.Ordinal);
        var run = Assert.Single(doc.GetProperty("runs").EnumerateArray());
        var driver = run.GetProperty("tool").GetProperty("driver");
        Assert.False(string.IsNullOrEmpty(driver.GetProperty("name").GetString()));
        Assert.False(string.IsNullOrEmpty(driver.GetProperty("version").GetString()));
        Assert.True(Uri.TryCreate(driver.GetProperty("informationUri").GetString(), UriKind.Absolute, out _));
        var rules = driver.GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(Audit.Api.Features.Lint.Linter.Catalogue.Count, rules.Count);
        Assert.All(rules, rule =>
        {
            Assert.False(string.IsNullOrEmpty(rule.GetProperty("shortDescription").GetProperty("text").GetString()));
            Assert.False(string.IsNullOrEmpty(rule.GetProperty("fullDescription").GetProperty("text").GetString()));
            Assert.False(string.IsNullOrEmpty(rule.GetProperty("help").GetProperty("text").GetString()));
            Assert.Contains(rule.GetProperty("defaultConfiguration").GetProperty("level").GetString(), new[] { "error", "warning", "note" });
        });

        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2, results.Count);
        Assert.All(results, res =>
        {
            var id = res.GetProperty("ruleId").GetString();
            Assert.Equal(id, rules[res.GetProperty("ruleIndex").GetInt32()].GetProperty("id").GetString());
            Assert.Contains(res.GetProperty("level").GetString(), new[] { "error", "warning", "note" });
            Assert.False(string.IsNullOrEmpty(res.GetProperty("message").GetProperty("text").GetString()));
            var loc = Assert.Single(res.GetProperty("locations").EnumerateArray());
            Assert.Equal("run:gh", loc.GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString());
            Assert.True(loc.GetProperty("physicalLocation").GetProperty("region").GetProperty("startLine").GetInt64() >= 1);
            Assert.All(loc.GetProperty("logicalLocations").EnumerateArray(), l => Assert.StartsWith("gh#", l.GetProperty("fullyQualifiedName").GetString(), StringComparison.Ordinal));
        });
        var exec = results.Single(x => x.GetProperty("ruleId").GetString() == "exec-noncacheable");
        Assert.Equal(18, exec.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("region").GetProperty("startLine").GetInt64());
    }

    [Fact]
    public async Task Http_lint_answers_json_and_sarif_and_404_for_an_unknown_run()
    {
        await Ingest("gh200-gpu-passthrough.ndjson", "gh");
        var app = HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        await using var _ = app;
        var client = app.GetTestClient();

        var json = JsonDocument.Parse(await client.GetStringAsync("/runs/gh/lint")).RootElement;
        Assert.Equal(2, json.GetProperty("summary").GetProperty("warnings").GetInt32());
        var sarif = await client.GetAsync("/runs/gh/lint?format=sarif");
        Assert.Equal("application/sarif+json", sarif.Content.Headers.ContentType?.MediaType);
        Assert.Equal("2.1.0", JsonDocument.Parse(await sarif.Content.ReadAsStringAsync()).RootElement.GetProperty("version").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/runs/nope/lint")).StatusCode);
    }
}
