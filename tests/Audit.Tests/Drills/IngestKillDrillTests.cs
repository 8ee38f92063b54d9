using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Drills;

/// <summary>kill -9 of an ingest at seeded random points: the run is absent or whole, and the retry stores it whole, once.</summary>
public sealed class IngestKillDrillTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task An_ingest_killed_at_random_points_leaves_its_run_absent_or_whole_and_the_retry_stores_it_once()
    {
        var file = Path.Combine(Path.GetTempPath(), $"drill-{Guid.NewGuid():N}.ndjson");
        await File.WriteAllLinesAsync(file, HostProcess.TraceLines(faults: 8_000, seed: 7));
        try
        {
            var timed = System.Diagnostics.Stopwatch.StartNew();
            var reference = await HostProcess.RunAsync(["ingest", file, "--run", "ref", "--db", ConnectionString]);
            var wholeMs = (int)timed.ElapsedMilliseconds;
            Assert.Equal(0, reference.Exit);
            var whole = await ScalarAsync("select count(*) from events where run_id = 'ref'");
            Assert.True(whole > 8_000);

            var rng = new Random(21);
            var outcomes = new List<string>();
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var run = $"k{attempt}";
                using (var ingest = HostProcess.Start(["ingest", file, "--run", run, "--db", ConnectionString]))
                {
                    // From process start-up to the commit: within the time a whole ingest took here, so that a faster
                    // build or machine still kills some mid-way (fixed delays of 0.3-2.5 s once all came after it).
                    await Task.Delay(rng.Next(wholeMs / 10, wholeMs * 9 / 10));
                    outcomes.Add(ingest.HasExited ? "finished" : "killed");
                    ingest.Kill();
                }

                var stored = await ScalarAsync("select count(*) from events where run_id = $1", run);
                Assert.True(stored == 0 || stored == whole, $"{run}: {stored} of {whole} events after the kill");
                Assert.Equal(stored == 0 ? 0 : 1, await ScalarAsync("select count(*) from runs where run_id = $1", run));

                var retry = await HostProcess.RunAsync(["ingest", file, "--run", run, "--db", ConnectionString]);
                Assert.Equal(0, retry.Exit);
                Assert.Equal(whole, await ScalarAsync("select count(*) from events where run_id = $1", run));
                var again = await CliRunner.RunAsync(ConnectionString, "ingest", file, "--run", run);
                Assert.Contains("nothing added", again.Out, StringComparison.Ordinal);
                Assert.Equal(whole, await ScalarAsync("select count(*) from events where run_id = $1", run));
            }

            Assert.Contains("killed", outcomes);
            Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "db", "check", "--samples", "3")).Exit);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
