using System.Collections.Concurrent;
using Audit.Projections.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Audit.Projections.Temporal;

/// <summary>
/// Writes and reads the temporal projections. Inline: the rows an append changes are written in
/// the append's own transaction, with the projections' checkpoints. Views of the rows that hold
/// are cached per run between appends, but only once the append that changed them committed.
/// </summary>
/// <param name="spareLeaves">how many spare leaves to keep made ahead (<see cref="Partitions.SpareLeaves"/> in the hosts): each
/// leaf this process makes for a new run, claimed or built, is replaced in the background. 0 keeps none.</param>
public sealed class ProjectionStore(NpgsqlDataSource dataSource, int spareLeaves = 0) : IInlineProjection, IAsyncDisposable, IDisposable
{
    // The background work that makes spare leaves, one at a time per process (KeepSpares).
    private Task _sparing = Task.CompletedTask;
    private int _sparingNow;

    // The views of the rows that hold, by the contract of RunCache: (generation, last seq) is the fingerprint.
    private readonly RunCache<(int Gen, long Seq, RunProjections View)> _views = new();
    // The generation whose leaf this process last made sure of, per run: appends after the first need no query to know it.
    private readonly ConcurrentDictionary<string, int> _attached = new(StringComparer.Ordinal);
    // The generation of each leaf this process made and has not analyzed yet, and of those an append analyzed
    // and has not committed (AnalyzeNewLeafAsync).
    private readonly ConcurrentDictionary<string, int> _unanalyzed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _analyzing = new(StringComparer.Ordinal);

    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>
    /// A run this process has not attached a leaf for: its leaf is made and attached on the append's own
    /// connection before the append begins, in a short transaction of its own (ADR 0005). A second
    /// connection for the DDL, while the append held its first, made new runs arriving together open
    /// twice the backends.
    /// </summary>
    public async Task PrepareAsync(NpgsqlConnection conn, string runId, CancellationToken ct)
    {
        if (_attached.ContainsKey(runId))
        {
            return;
        }

        var gen = await ActiveGenerationAsync(conn, null, runId, ct, create: true);
        if (await Partitions.EnsureAttachedAsync(conn, runId, gen, ct))
        {
            _unanalyzed[runId] = gen;
            KeepSpares();
        }

        _attached[runId] = gen;
    }

    /// <summary>The spare leaves this process is making now, if any (ended when there are as many as it keeps).</summary>
    public Task SparesMade => Volatile.Read(ref _sparing);

    /// <summary>
    /// Makes spare leaves in the background until there are as many as this store keeps (ADR 0005), unless that is under
    /// way. A failure leaves fewer spares: the next new run's leaf is then built in its first append, as without spares.
    /// </summary>
    private void KeepSpares()
    {
        if (spareLeaves == 0 || Interlocked.Exchange(ref _sparingNow, 1) == 1)
        {
            return;
        }

        Volatile.Write(ref _sparing, Task.Run(async () =>
        {
            try
            {
                await Partitions.ReplenishSparesAsync(dataSource, spareLeaves, CancellationToken.None);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or ObjectDisposedException)
            {
                // Nothing waits for the spares: a new run without one builds its leaf itself.
            }
            finally
            {
                Volatile.Write(ref _sparingNow, 0);
            }
        }));
    }

    /// <summary>
    /// A process that ends waits for the spares under way, so that its exit does not throw their work away (each is one
    /// short transaction: an exit mid-way leaves nothing of it).
    /// </summary>
    public async ValueTask DisposeAsync() => await SparesMade.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    /// <summary>The same for a container disposed without await; neither throws, whatever ended the spares' work.</summary>
    public void Dispose() => SparesMade.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();

    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, IReadOnlyList<StoredEvent> appended, CancellationToken ct)
    {
        if (appended.Count == 0)
        {
            return;
        }

        var gen = await ActiveGenerationAsync(conn, tx, runId, ct, create: true);
        if (!_attached.TryGetValue(runId, out var attached) || attached != gen)
        {
            // A generation swapped in since PrepareAsync (a rebuild): in a transaction of its own, so that the
            // DDL's locks do not last as long as the append.
            if (await Partitions.EnsureAttachedAsync(dataSource, runId, gen, ct))
            {
                _unanalyzed[runId] = gen;
            }

            _attached[runId] = gen;
        }

        var fromSeq = appended[0].Seq;
        RunProjections view;
        if (_views.TryTake(runId, c => c.Gen == gen && c.Seq == fromSeq - 1, out var cached))
        {
            view = cached.View;
        }
        else
        {
            view = await LoadOpenAsync(conn, tx, runId, gen, ct);
        }

        foreach (var e in appended)
        {
            view.Apply(e.Recorded);
        }

        await WriteAsync(conn, tx, runId, gen, view.Log, ct);
        await AnalyzeNewLeafAsync(conn, tx, runId, gen, view.Log, ct);
        view.Log.Clear();
        await CheckpointAsync(conn, tx, runId, gen, appended[^1].Seq, view.Names(), ct);
        _views.Stage(runId, (gen, appended[^1].Seq, view));
    }

    public void Completed(string runId, bool committed)
    {
        _views.Complete(runId, committed);
        if (_analyzing.TryRemove(runId, out var gen) && !committed)
        {
            _unanalyzed.TryAdd(runId, gen);
        }
    }

    /// <summary>
    /// Gives a leaf this process made its first statistics, in the first append that writes rows to it. A leaf
    /// nobody analyzed yet has none, and the planner then takes `run_id = $5` and `to_seq is null` at a default
    /// selectivity of 1 row: it closed an append's rows by reading every open row of the leaf and matching each
    /// against every row to close. That cost grew with the run until autovacuum analyzed the leaf, which it may
    /// do only a minute later (docs/benchmarks.md). One row in the statistics is enough for the planner to see
    /// that every row is the run's: it then looks each row to close up in the open-row index. Autovacuum keeps
    /// the statistics from there.
    /// </summary>
    private async Task AnalyzeNewLeafAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int gen, ChangeLog log, CancellationToken ct)
    {
        // Taken only when the leaf this process made is of this generation.
        if (!log.Rows.Any() || !_unanalyzed.TryRemove(new KeyValuePair<string, int>(runId, gen)))
        {
            return;
        }

        _analyzing[runId] = gen;
        await using var cmd = new NpgsqlCommand($"analyze {Partitions.LeafName(runId, gen)}", conn, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The generation readers use (1 until a rebuild swapped another in); writers create the row, in the same round trip.</summary>
    public static async Task<int> ActiveGenerationAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, CancellationToken ct, bool create = false)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        if (create)
        {
            batch.BatchCommands.Add(new("insert into projection_generations (run_id, active_gen) values ($1, 1) on conflict (run_id) do nothing") { Parameters = { new() { Value = runId } } });
        }

        batch.BatchCommands.Add(new("select coalesce((select active_gen from projection_generations where run_id = $1), 1)") { Parameters = { new() { Value = runId } } });
        return (int)(await batch.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The rows of a generation that still hold, folded back into views.</summary>
    public static async Task<RunProjections> LoadOpenAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct)
    {
        var view = new RunProjections();
        foreach (var row in await ReadOpenAsync(conn, tx, runId, Partitions.LeafName(runId, gen), ct))
        {
            view.Load(row);
        }

        return view;
    }

    /// <summary>The open rows of a run's table (a leaf, through its open-row index, or a rebuild's snapshot), as stored.</summary>
    /// <remarks>The run filter matches every row of the table; on a cluster it routes the read to the run's shard (ADR 0011).</remarks>
    public static async Task<List<TemporalRow>> ReadOpenAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, string table, CancellationToken ct)
    {
        var rows = new List<TemporalRow>();
        await using var cmd = new NpgsqlCommand(
            $"select projection, lo, hi, from_seq, data::text from {table} where run_id = $1 and to_seq is null", conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            rows.Add(new TemporalRow(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), null, r.GetString(4)));
        }

        return rows;
    }

    /// <summary>Writes a batch's row changes into the generation's leaf: closed rows by one bulk update through the open-row index, new rows by COPY.</summary>
    public static async Task WriteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int gen, ChangeLog log, CancellationToken ct)
    {
        var leaf = Partitions.LeafName(runId, gen);
        if (log.Closed.Count > 0)
        {
            await using var cmd = new NpgsqlCommand($"""
                update {leaf} p set to_seq = c.to_seq
                from unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) as c(projection, lo, from_seq, to_seq)
                where p.run_id = $5 and p.to_seq is null and p.projection = c.projection and p.lo = c.lo and p.from_seq = c.from_seq
                """, conn, tx);
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.Projection).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.Lo).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.FromSeq).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.ToSeq).ToArray() });
            cmd.Parameters.Add(new() { Value = runId });
            var updated = await cmd.ExecuteNonQueryAsync(ct);
            if (updated != log.Closed.Count)
            {
                throw new InvalidOperationException($"run {runId}: {log.Closed.Count} projection rows to close, {updated} found open in {leaf}");
            }
        }

        await CopyAsync(conn, leaf, runId, gen, log.Rows, ct);
    }

    /// <summary>COPY BINARY of rows into a table shaped like projection_rows.</summary>
    public static async Task CopyAsync(NpgsqlConnection conn, string table, string runId, int gen, IEnumerable<TemporalRow> rows, CancellationToken ct)
    {
        await using var copy = await conn.BeginBinaryImportAsync(
            $"copy {table} (run_id, gen, projection, lo, hi, from_seq, to_seq, data) from stdin (format binary)", ct);
        foreach (var row in rows)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(runId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(gen, NpgsqlDbType.Integer, ct);
            await copy.WriteAsync(row.Projection, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(row.Lo, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(row.Hi, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(row.FromSeq, NpgsqlDbType.Bigint, ct);
            await WriteNullable(copy, row.ToSeq, ct);
            await copy.WriteAsync(row.Data, NpgsqlDbType.Json, ct);
        }

        await copy.CompleteAsync(ct);
    }

    /// <summary>One checkpoint per projection of the run (stage2, vmas, attributes, memslots/N, gmem/FD).</summary>
    public static async Task CheckpointAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int gen, long seq, IEnumerable<string> names, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            insert into projection_checkpoints (run_id, projection, gen, seq)
            select $1, p, $2, $3 from unnest($4::text[]) as p
            on conflict (run_id, projection, gen) do update set seq = excluded.seq
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = gen });
        cmd.Parameters.Add(new() { Value = seq });
        cmd.Parameters.Add(new() { Value = names.ToArray() });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task WriteNullable(NpgsqlBinaryImporter copy, long? value, CancellationToken ct)
    {
        if (value is { } v)
        {
            await copy.WriteAsync(v, NpgsqlDbType.Bigint, ct);
        }
        else
        {
            await copy.WriteNullAsync(ct);
        }
    }
}
