using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Audit.Projections.Temporal;

/// <summary>
/// The leaves of projection_rows (migration 0005): one table per run and generation. The inline
/// projection makes its leaf with its indexes and attaches it before the first append; a rebuild creates its leaf detached with its
/// indexes, loads it, then attaches it. Attaching takes SHARE UPDATE EXCLUSIVE on the parent, which
/// readers and writers of other leaves never wait for; an old leaf leaves by DETACH CONCURRENTLY.
/// </summary>
public static class Partitions
{
    /// <summary>The time-travel index of the rows that closed: a box per row, x the span, y the seqs (migrations 0005, 0009).</summary>
    public const string ClosedIndexDefinition = "using gist (projection_span(lo, hi, from_seq, to_seq)) where to_seq is not null";

    /// <summary>The rows that hold now, by address: those of one projection never overlap (migration 0009).</summary>
    public const string OpenIndexDefinition = "(projection, lo) where to_seq is null";

    /// <summary>
    /// The rows that hold now, by the seq they opened at: a summary per 128 pages (migration 0022, ADR 0017).
    /// A row that holds is never updated and a leaf takes rows in seq order, so from_seq follows the heap.
    /// </summary>
    public const string OpenFromIndexDefinition = "using brin (from_seq) with (autosummarize = on) where to_seq is null";

    /// <summary>The rows of the small projections (all but stage2), apart from the stage-2 rows.</summary>
    public const string SmallIndexDefinition = "(projection, from_seq) where projection <> 'stage2'";

    /// <summary>
    /// The coarse stage-2 cells (ADR 0015) with every column the map reads, so the cells that hold at a seq
    /// come from the index alone (migration 0017): through the small index every version opened before the
    /// seq was a heap visit, 10,333 of them for 144 holding mid-way through the 10M-event run (91 ms warm).
    /// </summary>
    public const string CellsIndexDefinition = "(projection, from_seq) include (to_seq, lo, hi, run_id, gen, data) where projection >= '" + Stage2Cells.Prefix + "' and projection < '" + Stage2Cells.PrefixEnd + "'";

    /// <summary>projection_rows_&lt;first 16 hex digits of md5(run)&gt;_&lt;gen&gt;, as migration 0005 names them.</summary>
    public static string LeafName(string runId, int gen) =>
        "projection_rows_" + Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(runId)))[..16] + "_" + gen.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>The check that binds a leaf to its run's generation, so that attaching it scans nothing.</summary>
    private static string Bound(string runId, int gen) => $"run_id = {Literal(runId)} and gen = {gen}";

    /// <summary>(exists, attached) for a run's generation.</summary>
    public static async Task<(bool Exists, bool Attached)> StateAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("select to_regclass($1) is not null, exists (select 1 from pg_inherits where inhrelid = to_regclass($1))", conn, tx);
        cmd.Parameters.Add(new() { Value = LeafName(runId, gen) });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetBoolean(0), r.GetBoolean(1));
    }

    /// <summary>
    /// The parent's columns (migrations 0005, 0007, 0019) in the order a row packs tightest: the four 8-byte
    /// columns first, then the 4-byte generation, then the texts, which need no alignment. In the parent's order
    /// the run id and projection name left 7 bytes of padding before lo: 8 bytes of every row (ADR 0017).
    /// Attaching matches columns by name, so a leaf may order them its own way.
    /// </summary>
    public const string LeafColumns = "lo bigint not null, hi bigint not null, from_seq bigint not null, to_seq bigint, gen integer not null, run_id text not null, projection text not null, data json not null";

    /// <summary>
    /// A leaf's storage parameters (a spare's too): autovacuum comes at 1% of its rows dead, unthrottled (migration 0016,
    /// ADR 0016): each row an append closes leaves a dead version, and at the default fifth the dead ones were a third
    /// of the leaf after a fast ingest.
    /// </summary>
    private const string LeafStorage = "with (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 20000, autovacuum_vacuum_cost_delay = 0)";

    /// <summary>Creates the leaf of a generation, detached and without indexes, its rows bound by a check (so attaching scans nothing).</summary>
    public static async Task CreateDetachedAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct)
    {
        var leaf = LeafName(runId, gen);
        await Exec(conn, tx, $"create table {leaf} ({LeafColumns}, constraint ck_{leaf} check ({Bound(runId, gen)})) {LeafStorage}", ct);
    }

    /// <summary>The leaf's indexes, matching the parent's (migrations 0006 and 0009), so attaching builds none.</summary>
    public static Task CreateIndexesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct) =>
        CreateIndexesAsync(conn, tx, LeafName(runId, gen), ct);

    /// <summary>The prefixes of a leaf's index names, in the order of <see cref="CreateIndexesAsync(NpgsqlConnection, NpgsqlTransaction?, string, CancellationToken)"/>.</summary>
    private static readonly string[] IndexPrefixes = ["ix_", "ixo_", "ixf_", "ixs_", "ixc_"];

    private static async Task CreateIndexesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string table, CancellationToken ct)
    {
        string[] definitions = [ClosedIndexDefinition, OpenIndexDefinition, OpenFromIndexDefinition, SmallIndexDefinition, CellsIndexDefinition];
        for (var i = 0; i < definitions.Length; i++)
        {
            await Exec(conn, tx, $"create index if not exists {IndexPrefixes[i]}{table} on {table} {definitions[i]}", ct);
        }
    }

    public static Task AttachAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct) =>
        Exec(conn, tx, $"alter table projection_rows attach partition {LeafName(runId, gen)} for values from ({Literal(runId)}, {gen}) to ({Literal(runId)}, {gen + 1})", ct);

    /// <summary>Makes sure the leaf exists and is attached, in a short transaction of its own (two writers may race: an advisory lock orders them). True when this call made the leaf.</summary>
    public static async Task<bool> EnsureAttachedAsync(NpgsqlDataSource ds, string runId, int gen, CancellationToken ct)
    {
        await using var conn = await ds.OpenConnectionAsync(ct);
        return await EnsureAttachedAsync(conn, runId, gen, ct);
    }

    /// <summary>The same on a connection that has no transaction open (an append's, before it begins).</summary>
    public static async Task<bool> EnsureAttachedAsync(NpgsqlConnection conn, string runId, int gen, CancellationToken ct)
    {
        await using var tx = await conn.BeginTransactionAsync(ct);
        // The commit need not wait for its WAL to reach the disk while it holds the parent's lock, which other new runs'
        // leaves wait for: the append that follows commits durably, and that flushes this commit's WAL with its own.
        // A crash before then loses the leaf with the append, and the retried append makes it again.
        await using (var lk = new NpgsqlBatch(conn, tx))
        {
            lk.BatchCommands.Add(new("set local synchronous_commit = off"));
            lk.BatchCommands.Add(new("select pg_advisory_xact_lock(hashtextextended($1, 0))") { Parameters = { new() { Value = "audit.partition:" + LeafName(runId, gen) } } });
            await lk.ExecuteNonQueryAsync(ct);
        }

        var (exists, attached) = await StateAsync(conn, tx, runId, gen, ct);
        if (!exists && !await TryClaimSpareAsync(conn, tx, runId, gen, ct))
        {
            // Its indexes are made before the attach, which then only links them to the parent's: the attach holds
            // the parent's lock, which the first appends of other new runs wait for, while it builds none.
            await CreateDetachedAsync(conn, tx, runId, gen, ct);
            await CreateIndexesAsync(conn, tx, runId, gen, ct);
        }

        if (!attached)
        {
            await AttachAsync(conn, tx, runId, gen, ct);
        }

        await tx.CommitAsync(ct);
        return !exists;
    }

    /// <summary>The spare leaves a process that makes leaves keeps made ahead (ADR 0005): as many as new runs may arrive at once.</summary>
    public const int SpareLeaves = 8;

    /// <summary>What every spare's name begins with; a spare is a table of the parent's schema, detached, never written.</summary>
    public const string SparePrefix = "projection_rows_spare_";

    /// <summary>The spare leaves there are (oid, relname), in the parent's schema: tables whose name begins with <see cref="SparePrefix"/>.</summary>
    public static readonly string SparesSql = "select c.oid, c.relname from pg_class c where c.relnamespace = (select relnamespace from pg_class where oid = 'projection_rows'::regclass) and c.relkind = 'r' and c.relname like '"
        + SparePrefix.Replace("_", "\\_", StringComparison.Ordinal) + "%'";

    /// <summary>
    /// Makes one spare leaf: a leaf's table and its five indexes under a name of its own, without the check that binds a
    /// leaf to its run, in one transaction. A leaf made inside an append cost it 5-7 ms of CPU for the DDL and an fsync
    /// per index built (docs/benchmarks.md); a spare takes that work out of the append.
    /// </summary>
    public static async Task<string> CreateSpareAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var spare = SparePrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, tx, $"create table {spare} ({LeafColumns}) {LeafStorage}", ct);
        await CreateIndexesAsync(conn, tx, spare, ct);
        await tx.CommitAsync(ct);
        return spare;
    }

    /// <summary>The spare leaves there are now.</summary>
    public static async Task<List<string>> SparesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(SparesSql + " order by c.relname", conn, tx);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var names = new List<string>();
        while (await r.ReadAsync(ct))
        {
            names.Add(r.GetString(1));
        }

        return names;
    }

    /// <summary>Makes spare leaves until there are <paramref name="wanted"/>; returns how many it made.</summary>
    public static async Task<int> ReplenishSparesAsync(NpgsqlDataSource ds, int wanted, CancellationToken ct)
    {
        await using var conn = await ds.OpenConnectionAsync(ct);
        var made = 0;
        // Counted again after each, as claims go on meanwhile; bounded, should the count never see what this makes.
        while (made < 4 * wanted && (await SparesAsync(conn, null, ct)).Count < wanted)
        {
            await CreateSpareAsync(conn, ct);
            made++;
        }

        return made;
    }

    /// <summary>
    /// Turns a spare into the leaf of a run's generation, in the caller's transaction: renamed with its indexes, then bound
    /// to the run by the leaf's check (the spare is empty: the check scans nothing). Each spare has an advisory lock of its
    /// own, held to the transaction's end, so claimers take different spares at once: under one lock for all, 8 new runs
    /// arriving together waited for each other's claims. False when there is none free.
    /// </summary>
    private static async Task<bool> TryClaimSpareAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int gen, CancellationToken ct)
    {
        foreach (var spare in await SparesAsync(conn, tx, ct))
        {
            if (await TryLockSpareAsync(conn, tx, spare, ct))
            {
                var leaf = LeafName(runId, gen);
                var renames = string.Join("; ", IndexPrefixes.Select(p => $"alter index {p}{spare} rename to {p}{leaf}"));
                await Exec(conn, tx, $"alter table {spare} rename to {leaf}; {renames}; alter table {leaf} add constraint ck_{leaf} check ({Bound(runId, gen)})", ct);
                return true;
            }
        }

        return false;
    }

    /// <summary>True when this transaction now holds the spare's lock and the spare is still there (not claimed by a transaction that committed since it was listed).</summary>
    private static async Task<bool> TryLockSpareAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string spare, CancellationToken ct)
    {
        await using (var lk = new NpgsqlCommand("select pg_try_advisory_xact_lock(hashtextextended($1, 0))", conn, tx))
        {
            lk.Parameters.Add(new() { Value = "audit.partition-spare:" + spare });
            if (!(bool)(await lk.ExecuteScalarAsync(ct))!)
            {
                return false;
            }
        }

        // A statement of its own: its catalog lookup comes after the lock, so it sees a claim that committed while this waited.
        await using var there = new NpgsqlCommand("select to_regclass($1) is not null", conn, tx);
        there.Parameters.Add(new() { Value = spare });
        return (bool)(await there.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Removes a generation's leaf: detached concurrently when attached (readers are not blocked), then dropped.</summary>
    public static async Task DropAsync(NpgsqlDataSource ds, string runId, int gen, CancellationToken ct)
    {
        await using var conn = await ds.OpenConnectionAsync(ct);
        var (exists, attached) = await StateAsync(conn, null, runId, gen, ct);
        if (!exists)
        {
            return;
        }

        var leaf = LeafName(runId, gen);
        if (attached)
        {
            try
            {
                await Exec(conn, null, $"alter table projection_rows detach partition {leaf} concurrently", ct);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.ObjectNotInPrerequisiteState)
            {
                // An earlier detach was interrupted between its two transactions.
                await Exec(conn, null, $"alter table projection_rows detach partition {leaf} finalize", ct);
            }
        }

        await Exec(conn, null, $"drop table {leaf}", ct);
    }

    /// <summary>One statement without parameters (DDL, or a statement on a leaf by name).</summary>
    internal static async Task Exec(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
