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
    /// Creates the leaf of a generation, detached and without indexes, its rows bound by a check (so attaching
    /// scans nothing). Autovacuum comes at 1% of its rows dead, unthrottled (migration 0016, ADR 0016): each
    /// row an append closes leaves a dead version, and at the default fifth the dead ones were a third of
    /// the leaf after a fast ingest.
    /// </summary>
    public static async Task CreateDetachedAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct)
    {
        var leaf = LeafName(runId, gen);
        await Exec(conn, tx, $"""
            create table {leaf} ({LeafColumns},
                constraint ck_{leaf} check (run_id = {Literal(runId)} and gen = {gen}))
            with (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 20000, autovacuum_vacuum_cost_delay = 0)
            """, ct);
    }

    /// <summary>The leaf's indexes, matching the parent's (migrations 0006 and 0009), so attaching builds none.</summary>
    public static async Task CreateIndexesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct)
    {
        var leaf = LeafName(runId, gen);
        await Exec(conn, tx, $"create index if not exists ix_{leaf} on {leaf} {ClosedIndexDefinition}", ct);
        await Exec(conn, tx, $"create index if not exists ixo_{leaf} on {leaf} {OpenIndexDefinition}", ct);
        await Exec(conn, tx, $"create index if not exists ixf_{leaf} on {leaf} {OpenFromIndexDefinition}", ct);
        await Exec(conn, tx, $"create index if not exists ixs_{leaf} on {leaf} {SmallIndexDefinition}", ct);
        await Exec(conn, tx, $"create index if not exists ixc_{leaf} on {leaf} {CellsIndexDefinition}", ct);
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
        await using (var lk = new NpgsqlCommand("select pg_advisory_xact_lock(hashtextextended($1, 0))", conn, tx))
        {
            lk.Parameters.Add(new() { Value = "audit.partition:" + LeafName(runId, gen) });
            await lk.ExecuteNonQueryAsync(ct);
        }

        var (exists, attached) = await StateAsync(conn, tx, runId, gen, ct);
        if (!exists)
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
