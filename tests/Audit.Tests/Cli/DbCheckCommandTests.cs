using System.Text.Json;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Cli;

public sealed class DbCheckCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static string Gh => Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson");

    private async Task<(int Exit, JsonElement Body)> Check(params string[] run) => await CheckIn(ConnectionString, run);

    private static async Task<(int Exit, JsonElement Body)> CheckIn(string db, params string[] run)
    {
        var r = await CliRunner.RunAsync(db, ["db", "check", .. run, "--json"]);
        return (r.Exit, r.Exit is 0 or 4 ? JsonDocument.Parse(r.Out).RootElement : default);
    }

    private static List<string> Checks(JsonElement body) =>
        body.GetProperty("problems").EnumerateArray().Select(p => p.GetProperty("check").GetString()!).ToList();

    private async Task Exec(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_healthy_store_passes_every_check_with_projection_samples_compared()
    {
        // Checking every run needs a store of only healthy runs: the class's schema holds the damaged ones.
        await using var own = await SchemaFixture.CreateAsync("dbcheck_healthy");
        Assert.Equal(0, (await CliRunner.RunAsync(own.ConnectionString, "ingest", Gh, "--run", "gh")).Exit);
        Assert.Equal(0, (await CliRunner.RunAsync(own.ConnectionString, "ingest", Path.Combine(Paths.Samples, "x86-snp.ndjson"), "--run", "snp")).Exit);
        var (exit, body) = await CheckIn(own.ConnectionString);
        Assert.Equal(0, exit);
        Assert.Equal(2, body.GetProperty("runs").GetInt32());
        Assert.True(body.GetProperty("projectionSamples").GetInt32() >= 2);
        Assert.Empty(Checks(body));
        Assert.Equal(1, (await CliRunner.RunAsync(own.ConnectionString, "db", "check", "nope")).Exit);
    }

    [Fact]
    public async Task A_missing_event_is_a_sequence_gap_and_a_broken_batch_exit_4()
    {
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--run", "gh-gap")).Exit);
        await Exec("delete from events where run_id = 'gh-gap' and seq = 7");
        var (exit, body) = await Check("gh-gap");
        Assert.Equal(4, exit);
        Assert.Contains("sequence", Checks(body));
        Assert.Contains("batch", Checks(body));
        var gap = body.GetProperty("problems").EnumerateArray().First(p => p.GetProperty("check").GetString() == "sequence");
        Assert.Contains("first after seq 6", gap.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_whose_version_runs_ahead_of_its_events_is_reported()
    {
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--run", "gh-ahead")).Exit);
        await Exec("update runs set version = version + 3 where run_id = 'gh-ahead'");
        var (exit, body) = await Check("gh-ahead");
        Assert.Equal(4, exit);
        Assert.Contains("stream-version", Checks(body));
    }

    [Fact]
    public async Task A_projection_row_that_disagrees_with_the_events_is_found_and_a_rebuild_repairs_it()
    {
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--run", "gh-projection")).Exit);
        await Exec("update projection_rows set data = replace(data::text, 'Normal', 'Device')::json where run_id = 'gh-projection' and projection = 'stage2'");
        var r = await CliRunner.RunAsync(ConnectionString, "db", "check", "gh-projection", "--samples", "100");
        Assert.Equal(4, r.Exit);
        Assert.Contains("gh-projection: projection: after seq", r.Out, StringComparison.Ordinal);
        Assert.Contains("audit rebuild gh-projection", r.Out, StringComparison.Ordinal);

        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "rebuild", "gh-projection")).Exit);
        Assert.Equal(0, (await Check("gh-projection")).Exit);
    }
}
