using Audit.Api.Features.Fuzz;
using Audit.Api.Http;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Drills;

/// <summary>A seeded fuzz of mutated real traces through the HTTP import, on the real host and PostgreSQL.</summary>
public sealed class ImportFuzzTests(SchemaFixture schema) : DatabaseTest(schema)
{
    /// <summary>The bundled runs and the real PVM capture (every format the importers read).</summary>
    public static IReadOnlyList<string> Traces() =>
        Directory.GetFiles(Paths.Samples, "*.ndjson")
            .Concat(Directory.GetFiles(Path.Combine(Paths.Samples, "real", "x86-pvm-6.18")))
            .Order(StringComparer.Ordinal)
            .Select(File.ReadAllText)
            .ToList();

    [Theory]
    [InlineData(2101)]
    [InlineData(2102)]
    public async Task Mutated_real_traces_are_stored_or_refused_naming_a_line_never_a_server_error_and_leave_no_run_when_refused(int seed)
    {
        var app = HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        await using var _ = app;
        var report = await ImportFuzz.RunAsync(app.GetTestClient(), Traces(), count: 150, seed);

        Assert.True(report.Clean, string.Join("\n", report.Failures));
        Assert.Equal(150, report.Stored + report.Refused);
        Assert.True(report.Refused > 0 && report.Stored > 0, $"{report.Stored} stored, {report.Refused} refused: the mutations should give both");

        // Whatever was stored is whole.
        Assert.Equal(0, (await Audit.Tests.Cli.CliRunner.RunAsync(ConnectionString, "db", "check", "--samples", "3")).Exit);
    }

    [Theory]
    [InlineData("{\"type\": \"VmCreated\", \"ts\": \"9999-03-02T10:00:00Z\", \"vmType\": \"default\", \"ipaBits\": 48}", "field 'ts'")]
    [InlineData("{\"type\": \"VmCreated\", \"ts\": \"2026-03-02T10:00:00Z\", \"vmType\": \"default\", \"ipaBits\": 48, \"note\": \"a\\u0000b\"}", "NUL")]
    public async Task Inputs_the_fuzz_found_giving_server_errors_are_a_400_naming_their_line(string line, string reason)
    {
        var app = HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        await using var _ = app;
        var host = File.ReadLines(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson")).First(l => l.StartsWith('{'));
        using var body = new StringContent(host + "\n" + line + "\n");
        var r = await app.GetTestClient().PostAsync("/runs/found/import?format=ndjson", body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == System.Net.HttpStatusCode.BadRequest, text);
        Assert.Contains("body:2: ", text, StringComparison.Ordinal);
        Assert.Contains(reason, text, StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync("select count(*) from runs where run_id = 'found'"));
    }
}
