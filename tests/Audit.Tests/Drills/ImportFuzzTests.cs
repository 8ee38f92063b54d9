using Audit.Api.Features.Fuzz;
using Audit.Api.Http;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Drills;

/// <summary>A seeded fuzz of mutated real traces through the HTTP import, on the real host and PostgreSQL.</summary>
public sealed class ImportFuzzTests : DatabaseTest
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
}
