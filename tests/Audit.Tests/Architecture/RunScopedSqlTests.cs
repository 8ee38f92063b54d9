using Audit.Tests.Infrastructure;

namespace Audit.Tests.Architecture;

/// <summary>
/// ADR 0011: every statement in src/Projections and migrations/ touches one run, so a Citus cluster
/// distributed by run_id routes each to a single shard. The few statements that may not are listed
/// here with the reason, and each must still exist.
/// </summary>
public sealed class RunScopedSqlTests
{
    /// <summary>Statements allowed to span runs, by a piece of their text, with why.</summary>
    private static readonly (string Where, string Contains, string Why)[] Exempt =
    [
        ("EventStore.cs", "from runs where version > 0 order by run_id",
            "the list of runs: one row per run, the one read that fans out to every shard (ADR 0011)"),
        ("StoreIntegrity.cs", "select run_id from runs order by run_id",
            "db check without a run lists the runs it then checks one at a time"),
        ("0005_projection_partitions.sql", "insert into projection_rows select * from projection_rows_v1",
            "a one-time move of every run's rows into the partitioned table, before any cluster exists"),
        ("0005_projection_partitions.sql", "select distinct run_id, gen from projection_rows_v1",
            "the same one-time move: one leaf per run found"),
        ("0021_events_packed_columns.sql", "insert into events (seq, ts_ns, type, version, run_id, payload, fold) select",
            "a one-time move of every run's events into the table with packed columns, at the upgrade of a single server"),
    ];

    private static readonly string[] MigrationTexts = Directory.GetFiles(Path.Combine(Paths.Repo, "migrations"), "*.sql").Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();

    private static readonly IReadOnlySet<string> RunKeyed = RunScope.RunKeyedTables(MigrationTexts);

    [Fact]
    public void Every_table_the_migrations_create_is_keyed_by_run_id_first()
    {
        Assert.Equal(
            ["batches", "engine_checkpoints", "events", "events_unpacked", "explanation_steps", "projection_checkpoints", "projection_generations", "projection_rows", "projection_rows_v1", "runs"],
            RunKeyed.Order(StringComparer.Ordinal));
        foreach (var sql in MigrationTexts.Select(SqlSources.StripComments))
        {
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(
                sql, @"create\s+table\s+(\w+)\s*\((.*?)\)\s*(partition\s+by\s+range\s*\(([^)]*)\))?\s*;", System.Text.RegularExpressions.RegexOptions.Singleline))
            {
                var body = m.Groups[2].Value;
                var keyedFirst = System.Text.RegularExpressions.Regex.IsMatch(body, @"^\s*run_id\s+text\s+not\s+null\s+primary\s+key")
                    || System.Text.RegularExpressions.Regex.IsMatch(body, @"primary\s+key\s*\(\s*run_id\b")
                    || m.Groups[4].Value.TrimStart().StartsWith("run_id", StringComparison.Ordinal);
                Assert.True(keyedFirst, $"table {m.Groups[1].Value}: its key (primary or partition) does not start with run_id");
            }
        }
    }

    [Fact]
    public void Every_statement_in_projections_and_migrations_names_one_run_for_each_run_keyed_table()
    {
        var statements = Statements().ToList();
        Assert.True(statements.Count > 40, $"found only {statements.Count} statements: the scanner lost them");

        var violations = statements
            .Select(s => (s.Where, s.Text, Why: RunScope.Violation(s.Text, RunKeyed)))
            .Where(v => v.Why is not null)
            .ToList();
        var unexplained = violations.Where(v => !Exempt.Any(e => Matches(e, v.Where, v.Text))).ToList();
        Assert.True(unexplained.Count == 0, string.Join("\n", unexplained.Select(v => $"{v.Where}: {v.Why}\n    {Squeeze(v.Text)}")));

        // An exemption whose statement changed or left is removed, not kept as a blanket pass.
        foreach (var e in Exempt)
        {
            Assert.True(violations.Any(v => Matches(e, v.Where, v.Text)), $"exemption no longer needed: {e.Where}: {e.Contains}");
        }
    }

    [Fact]
    public void The_scan_finds_the_known_statements_with_their_constants_filled_in()
    {
        var texts = Statements().Select(s => Squeeze(s.Text)).ToList();

        // TemporalQueries builds its WHERE from constants: the run filter must arrive through them.
        Assert.Contains(texts, t => t.Contains("from projection_rows where run_id = $1 and gen = (select coalesce((select active_gen from projection_generations where run_id = $1), 1)) and projection = $3", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.StartsWith("copy events (run_id, seq, type", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.StartsWith("insert into projection_rows select * from projection_rows_v1", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("select seq, payload from events where seq > $1 order by seq", "events is read or written without a run id filter")]
    [InlineData("delete from explanation_steps where step_id > $1", "explanation_steps is read or written without a run id filter")]
    [InlineData("update {leaf} p set to_seq = $1 where p.to_seq is null", "{leaf} is read or written without a run id filter")]
    [InlineData("select e.seq from events e join projection_rows p on p.from_seq = e.seq where e.run_id = $1", "projection_rows is read or written without a run id filter")]
    [InlineData("select a.seq from events a join events b on a.seq = b.seq where a.run_id = $1 and b.run_id = $2", "joins across runs: run ids $1, $2")]
    [InlineData("select version from runs where run_id = $1 and exists (select 1 from batches where run_id = $2)", "joins across runs: run ids $1, $2")]
    [InlineData("insert into batches (run_id, batch_key) select run_id, batch_key from batches where batch_key = $1", "batches is read or written without a run id filter")]
    [InlineData("select count(*) from runs", "runs is read or written without a run id filter")]
    public void A_statement_that_spans_runs_is_caught(string sql, string expected)
    {
        var why = RunScope.Violation(sql, RunKeyed);
        Assert.NotNull(why);
        Assert.StartsWith(expected, why, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("select seq, payload::text from events where run_id = $1 and seq >= $2 order by seq")]
    [InlineData("insert into runs (run_id, created_at, updated_at) values ($1, $2, $2) on conflict (run_id) do nothing")]
    [InlineData("copy events (run_id, seq, type) from stdin (format binary)")]
    [InlineData("select e.seq from events e join explanation_steps s on s.step_id = e.seq where e.run_id = $1 and s.run_id = $1")]
    [InlineData("update {leaf} p set to_seq = c.to_seq from unnest($1::bigint[]) as c(to_seq) where p.run_id = $2 and p.to_seq is null")]
    [InlineData("delete from {leaf} where run_id = {Partitions.Literal(runId)} and to_seq > 5")]
    [InlineData("select 1 from pg_database where datname = $1")]
    [InlineData("insert into projection_checkpoints (run_id, projection, gen, seq) select $1, p, $2, $3 from unnest($4::text[]) as p")]
    public void A_statement_on_one_run_passes(string sql)
    {
        Assert.Null(RunScope.Violation(sql, RunKeyed));
    }

    [Fact]
    public void A_bad_statement_planted_in_source_or_a_migration_fails_the_scan()
    {
        var code = """
            sealed class Planted
            {
                private const string Filter = "run_id = $1";
                public string Good => $"select seq from events where {Filter}";
                public string Bad => @"select seq from events where seq > $1";
            }
            """;
        var literals = SqlSources.InCSharp([("Planted.cs", code)]).Where(s => RunScope.IsQuery(s.Text)).ToList();
        Assert.Equal(["select seq from events where run_id = $1", "select seq from events where seq > $1"], literals.Select(l => l.Text));
        Assert.Null(RunScope.Violation(literals[0].Text, RunKeyed));
        Assert.NotNull(RunScope.Violation(literals[1].Text, RunKeyed));
        Assert.Equal("Planted.cs:5", literals[1].Where);

        var migration = "-- a comment naming events\ncreate table t (run_id text);\ndelete from events where seq < 10;\n";
        var statements = SqlSources.InMigration("0099_planted.sql", migration);
        Assert.Equal(2, statements.Count);
        Assert.NotNull(RunScope.Violation(statements[1].Text, RunKeyed));
    }

    private static IEnumerable<SqlText> Statements()
    {
        var sources = Directory.GetFiles(Path.Combine(Paths.Repo, "src", "Projections"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(f => (Path.GetRelativePath(Paths.Repo, f), File.ReadAllText(f)));
        var migrations = Directory.GetFiles(Path.Combine(Paths.Repo, "migrations"), "*.sql")
            .SelectMany(f => SqlSources.InMigration(Path.GetRelativePath(Paths.Repo, f), File.ReadAllText(f)));
        return SqlSources.InCSharp(sources).Concat(migrations).Where(s => RunScope.IsQuery(s.Text));
    }

    private static bool Matches((string Where, string Contains, string Why) e, string where, string text) =>
        where.Contains(e.Where, StringComparison.Ordinal) && Squeeze(text).Contains(e.Contains, StringComparison.Ordinal);

    private static string Squeeze(string text) => System.Text.RegularExpressions.Regex.Replace(text.Trim(), @"\s+", " ");
}
