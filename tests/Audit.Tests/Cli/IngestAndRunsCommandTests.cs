using System.Text.Json;
using Audit.Domain.Events;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Cli;

public sealed class IngestAndRunsCommandTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static string Gh => Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson");

    private static int CountEvents(string file) =>
        File.ReadLines(file).Count(l => l.TrimStart().StartsWith('{'));

    private async Task<JsonElement> RunsJson()
    {
        var r = await CliRunner.RunAsync(ConnectionString, "runs", "--json");
        Assert.Equal(0, r.Exit);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    [Fact]
    public async Task Ingest_then_runs_lists_the_run_with_its_event_count_and_a_second_ingest_adds_nothing()
    {
        var first = await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--run", "gh-listed");
        Assert.Equal(0, first.Exit);

        var runs = await RunsJson();
        var gh = runs.EnumerateArray().Single(r => r.GetProperty("run").GetString() == "gh-listed");
        Assert.Equal(CountEvents(Gh), gh.GetProperty("events").GetInt64());
        Assert.Equal("arm64 6.17.2", gh.GetProperty("host").GetString());

        var again = await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--run", "gh-listed");
        Assert.Equal(0, again.Exit);
        Assert.Contains("nothing added", again.Out, StringComparison.Ordinal);
        var after = (await RunsJson()).EnumerateArray().Single(r => r.GetProperty("run").GetString() == "gh-listed");
        Assert.Equal(gh.GetProperty("lastSeq").GetInt64(), after.GetProperty("lastSeq").GetInt64());
        var inputTypes = Audit.Projections.Serialization.EventRegistry.Types.Where(t => !t.Derived).Select(t => t.StoredName).ToArray();
        Assert.Equal(CountEvents(Gh), await ScalarAsync("select count(*) from events where run_id = 'gh-listed' and type::text = any($1)", (object)inputTypes));
        Assert.True(gh.GetProperty("derived").GetInt64() > 0);
        Assert.Equal("arm64/6.17", gh.GetProperty("policy").GetString());
    }

    [Fact]
    public async Task A_file_whose_line_7_is_bad_exits_2_names_the_line_and_leaves_no_run()
    {
        var lines = File.ReadAllLines(Gh).Where(l => l.StartsWith('{')).Take(10).ToList();
        lines[6] = lines[6].Replace("\"gpa\"", "\"gpx\"", StringComparison.Ordinal).Replace("\"start\"", "\"strt\"", StringComparison.Ordinal);
        var file = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.ndjson");
        await File.WriteAllLinesAsync(file, lines);
        try
        {
            var r = await CliRunner.RunAsync(ConnectionString, "ingest", file, "--run", "bad");
            Assert.Equal(2, r.Exit);
            Assert.StartsWith($"{file}:7: missing field", r.Err, StringComparison.Ordinal);
            Assert.Equal(0, await ScalarAsync("select count(*) from runs where run_id = 'bad'"));
            Assert.Equal(0, await ScalarAsync("select count(*) from events where run_id = 'bad'"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Without_run_the_run_id_is_the_file_name()
    {
        var r = await CliRunner.RunAsync(ConnectionString, "ingest", Path.Combine(Paths.Samples, "x86-snp.ndjson"));
        Assert.Equal(0, r.Exit);
        Assert.Contains((await RunsJson()).EnumerateArray(), x => x.GetProperty("run").GetString() == "x86-snp");
    }

    [Fact]
    public async Task Two_files_of_one_run_are_merged_by_timestamp()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        var a = Path.Combine(dir, "a.ndjson");
        var b = Path.Combine(dir, "b.ndjson");
        await File.WriteAllLinesAsync(a, ["""{"type":"HostDescribed","ts":5,"arch":"x86_64","kernel":"6.16.1","vendor":"intel"}""", """{"type":"GuestMemfdClosed","ts":10,"fd":1}""", """{"type":"GuestMemfdClosed","ts":30,"fd":3}"""]);
        await File.WriteAllLinesAsync(b, ["""{"type":"GuestMemfdClosed","ts":20,"fd":2}""", """{"type":"GuestMemfdClosed","fd":22}"""]);
        var r = await CliRunner.RunAsync(ConnectionString, "ingest", a, b, "--run", "merged");
        Assert.Equal(0, r.Exit);
        var fds = new List<long>();
        await using var cmd = DataSource.CreateCommand("select (payload->>'fd')::bigint from events where run_id = 'merged' and type = 'guest_memfd_closed' order by seq");
        await using var rd = await cmd.ExecuteReaderAsync();
        while (await rd.ReadAsync())
        {
            fds.Add(rd.GetInt64(0));
        }

        Assert.Equal([1L, 2L, 22L, 3L], fds);
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task An_unreachable_database_exits_3_and_says_how_to_fix_it()
    {
        var r = await CliRunner.RunAsync("Host=127.0.0.1;Port=1;Username=x;Password=y;Timeout=2", "runs");
        Assert.Equal(3, r.Exit);
        Assert.Contains("unreachable", r.Err, StringComparison.Ordinal);
        Assert.Contains("--db", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_imports_both_bundled_samples()
    {
        var r = await CliRunner.RunAsync(ConnectionString, "demo");
        Assert.Equal(0, r.Exit);
        var runs = (await RunsJson()).EnumerateArray().Select(x => x.GetProperty("run").GetString()).ToList();
        Assert.Contains("gh", runs);
        Assert.Contains("snp", runs);
    }

    [Fact]
    public async Task A_run_without_a_host_description_is_bad_input_unless_a_policy_is_named()
    {
        var file = Path.Combine(Path.GetTempPath(), $"nohost-{Guid.NewGuid():N}.ndjson");
        await File.WriteAllLinesAsync(file, ["""{"type":"GuestFaulted","gpa":"0x1000","access":"read"}"""]);
        try
        {
            var r = await CliRunner.RunAsync(ConnectionString, "ingest", file, "--run", "nohost");
            Assert.Equal(2, r.Exit);
            Assert.Contains("no HostDescribed", r.Err, StringComparison.Ordinal);
            Assert.Equal(0, await ScalarAsync("select count(*) from runs where run_id = 'nohost'"));

            var named = await CliRunner.RunAsync(ConnectionString, "ingest", file, "--run", "nohost", "--policy", "x86-vmx/6.16");
            Assert.Equal(0, named.Exit);
            // Decisions are compact records (ADR 0013): read through the store, not the payload.
            var outcomes = new List<FaultOutcome>();
            await foreach (var e in Store().ReadAsync("nohost"))
            {
                if (e.Event is FaultResolved d)
                {
                    outcomes.Add(d.Outcome);
                }
            }

            Assert.Equal([FaultOutcome.MmioExit], outcomes);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task An_unknown_format_is_refused_as_bad_input()
    {
        var r = await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--format", "pcap");
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("pcap", r.Err, StringComparison.Ordinal);

        var perf = await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--format", "perf");
        Assert.Equal(2, perf.Exit);
        Assert.Contains("not a perf script line", perf.Err, StringComparison.Ordinal);

        // A format that does not fit the file: the first line that is not strace says so.
        var wrong = await CliRunner.RunAsync(ConnectionString, "ingest", Gh, "--format", "strace");
        Assert.Equal(2, wrong.Exit);
        Assert.Contains("not an strace line", wrong.Err, StringComparison.Ordinal);
    }
}
