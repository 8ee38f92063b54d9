using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Npgsql;
using NpgsqlTypes;

namespace Audit.Projections.Storage;

/// <summary>An event to append, with its own time and any unknown trace fields to keep.</summary>
public sealed record NewEvent(RunEvent Event, long? TsNs = null, IReadOnlyList<KeyValuePair<string, string>>? Extras = null);

/// <summary>One stored event of a run.</summary>
/// <param name="StoredPayload">The jsonb payload as stored; null for a compact record (ADR 0013).</param>
public sealed record StoredEvent(string RunId, long Seq, string Type, int Version, long? TsNs, string? StoredPayload, RunEvent Event)
{
    public Recorded Recorded => new(Seq, TsNs, Event);

    /// <summary>The payload as PostgreSQL prints jsonb; a compact record prints its event's payload the same way.</summary>
    public string Payload => StoredPayload ?? EventSerializer.AsJsonbText(Event);
}

public enum AppendStatus
{
    Appended,

    /// <summary>The batch key was seen before: nothing stored, the first result returned.</summary>
    Duplicate,

    /// <summary>The run's version was not the expected one: nothing stored (HTTP 409).</summary>
    Conflict,
}

public sealed record AppendResult(AppendStatus Status, long FirstSeq, long LastSeq, int InputCount, int EventCount, long Version);

/// <summary>Summary facts a caller may set on the run row with an append (from HostDescribed, the chosen policy).</summary>
public sealed record RunInfo(string? Host, string? Policy);

public sealed record RunSummary(string RunId, long EventCount, long InputCount, long? FirstTsNs, long? LastTsNs, string? Host, string? Policy, DateTimeOffset CreatedAt);

/// <summary>A projection that advances in the append's transaction (inline).</summary>
public interface IInlineProjection
{
    /// <summary>Work an append needs done before its transaction, on its connection (a new run's storage): DDL must not hold its locks for the whole append.</summary>
    Task PrepareAsync(NpgsqlConnection conn, string runId, CancellationToken ct) => Task.CompletedTask;

    Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, IReadOnlyList<StoredEvent> appended, CancellationToken ct);

    /// <summary>Told after the append's transaction ended, so that caches keep only committed work (the contract of <see cref="RunCache{T}"/>).</summary>
    void Completed(string runId, bool committed);
}

/// <summary>
/// The event store, shaped like Marten's: one stream per run, seq = stream version, optimistic
/// appends, bulk COPY BINARY in one transaction, idempotent batches. Appends to one run serialize
/// on its row lock, so a run's seqs commit in order without gaps and readers (which read one run
/// by seq) can never skip a late commit. Nothing reads across runs in a global order.
/// </summary>
public sealed class EventStore(NpgsqlDataSource dataSource, TimeProvider clock, IReadOnlyList<IInlineProjection>? inline = null)
{
    private readonly IReadOnlyList<IInlineProjection> _inline = inline ?? [];

    // Interned explanation steps per run (StepTable), cached by the contract of RunCache: the writers'
    // tables between appends that committed, and the readers' tables, grown as new steps appear.
    private readonly RunCache<StepTable> _writeSteps = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, StepTable> _readSteps = new(StringComparer.Ordinal);

    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>
    /// Appends events to a run in one transaction: lock the run, answer a retried batch or a version
    /// conflict without storing anything, COPY the events (serialized with the run's step table) and
    /// the steps they interned, advance the run, record the batch key, project inline, commit.
    /// </summary>
    /// <param name="expectedVersion">The run's last seq the caller saw (0 for a new run); null appends whatever it is.</param>
    /// <param name="batchKey">A retried batch with the same key stores nothing and returns the first result.</param>
    public async Task<AppendResult> AppendAsync(
        string runId,
        IReadOnlyList<NewEvent> events,
        long? expectedVersion = null,
        string? batchKey = null,
        RunInfo? info = null,
        CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var now = clock.GetUtcNow();
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        // An append of nothing prepares nothing, as the projections then apply nothing.
        if (events.Count > 0)
        {
            foreach (var p in _inline)
            {
                await p.PrepareAsync(conn, runId, ct);
            }
        }

        await using var tx = await conn.BeginTransactionAsync(ct);

        var (version, lastStepId) = await LockRunAsync(conn, tx, runId, now, ct);
        if (batchKey is not null && await FindBatch(conn, tx, runId, batchKey, ct) is { } first)
        {
            await tx.RollbackAsync(ct);
            return first with { Version = version };
        }

        if (expectedVersion is { } expected && expected != version)
        {
            await tx.RollbackAsync(ct);
            return new AppendResult(AppendStatus.Conflict, 0, 0, 0, 0, version);
        }

        var steps = await WriterStepsAsync(conn, tx, runId, lastStepId, ct);
        var copied = await CopyEventsAsync(conn, runId, version, events, steps, ct);
        await CopyNewStepsAsync(conn, runId, steps, ct);
        var newVersion = version + events.Count;
        var result = new AppendResult(AppendStatus.Appended, version + 1, newVersion, copied.Inputs, events.Count, newVersion);
        await AdvanceRunAsync(conn, tx, runId, newVersion, copied, info, now, ct);
        if (batchKey is not null)
        {
            await RecordBatchAsync(conn, tx, runId, batchKey, result, now, ct);
        }

        await ProjectAndCommitAsync(tx, runId, copied.Stored, steps, ct);
        return result;
    }

    /// <summary>What the COPY of an append stored: the events as stored, how many were inputs, and their first and last trace times.</summary>
    private sealed record Copied(List<StoredEvent> Stored, int Inputs, long? FirstTs, long? LastTs);

    /// <summary>
    /// Creates the run's row if new and locks it: appends to a run serialize here. Returns its version and its last
    /// interned step id. One round trip: the select is a statement of its own after the insert, so that it sees a
    /// row another append created and committed while the insert waited for it.
    /// </summary>
    private static async Task<(long Version, int LastStepId)> LockRunAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, DateTimeOffset now, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                new("insert into runs (run_id, created_at, updated_at) values ($1, $2, $2) on conflict (run_id) do nothing") { Parameters = { new() { Value = runId }, new() { Value = now } } },
                new("select version, (select coalesce(max(step_id), 0) from explanation_steps where run_id = $1) from runs where run_id = $1 for update") { Parameters = { new() { Value = runId } } },
            },
        };
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetInt64(0), r.GetInt32(1));
    }

    /// <summary>The run's writer step table as committed: the cached one when its last id matches the database's (another process may have appended since).</summary>
    private async Task<StepTable> WriterStepsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int lastStepId, CancellationToken ct) =>
        _writeSteps.TryTake(runId, t => t.MaxId == lastStepId, out var cached)
            ? cached
            : await LoadStepsAsync(conn, tx, runId, 0, new StepTable(writer: true), ct);

    /// <summary>COPYs the events after <paramref name="version"/> with their payloads (repeated explanation steps interned into <paramref name="steps"/>) and fold forms.</summary>
    private static async Task<Copied> CopyEventsAsync(NpgsqlConnection conn, string runId, long version, IReadOnlyList<NewEvent> events, StepTable steps, CancellationToken ct)
    {
        var stored = new List<StoredEvent>(events.Count);
        long? firstTs = null, lastTs = null;
        var inputs = 0;
        await using var copy = await conn.BeginBinaryImportAsync(
            "copy events (run_id, seq, type, version, ts_ns, payload, fold) from stdin (format binary)", ct);
        var seq = version;
        // One buffer for the append's compact records: each is written to the COPY before the next reuses it.
        var record = new ArrayBufferWriter<byte>(256);
        foreach (var e in events)
        {
            seq++;
            var type = EventRegistry.For(e.Event);

            // Faults and their decisions without unknown trace fields are stored as compact records (ADR 0013).
            var compact = CompactRecord.Applies(e.Event) && e.Extras is not { Count: > 0 };
            var payload = compact ? null : Encoding.UTF8.GetString(EventSerializer.SerializePayload(e.Event, e.Extras, steps));
            var storedVersion = compact ? CompactRecord.Version : (short)type.Version;
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(runId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(seq, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(type.StoredName, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(storedVersion, NpgsqlDbType.Smallint, ct);
            if (e.TsNs is { } ts)
            {
                await copy.WriteAsync(ts, NpgsqlDbType.Bigint, ct);
                firstTs ??= ts;
                lastTs = ts;
            }
            else
            {
                await copy.WriteNullAsync(ct);
            }

            if (payload is null)
            {
                await copy.WriteNullAsync(ct);
            }
            else
            {
                await copy.WriteAsync(payload, NpgsqlDbType.Jsonb, ct);
            }

            if (compact)
            {
                record.ResetWrittenCount();
                CompactRecord.Encode(e.Event, seq, steps, record);
                await copy.WriteAsync(record.WrittenMemory, NpgsqlDbType.Bytea, ct);
            }
            else if (FoldCodec.Encode(e.Event) is { } fold)
            {
                await copy.WriteAsync(fold, NpgsqlDbType.Bytea, ct);
            }
            else
            {
                await copy.WriteNullAsync(ct);
            }

            if (e.Event is InputEvent)
            {
                inputs++;
            }

            stored.Add(new StoredEvent(runId, seq, type.StoredName, storedVersion, e.TsNs, payload, e.Event));
        }

        await copy.CompleteAsync(ct);
        return new Copied(stored, inputs, firstTs, lastTs);
    }

    /// <summary>COPYs the steps this append gave an id, in the same transaction as the payloads that name them.</summary>
    private static async Task CopyNewStepsAsync(NpgsqlConnection conn, string runId, StepTable steps, CancellationToken ct)
    {
        var added = steps.TakeAdded();
        if (added.Count == 0)
        {
            return;
        }

        await using var copy = await conn.BeginBinaryImportAsync("copy explanation_steps (run_id, step_id, step) from stdin (format binary)", ct);
        foreach (var (id, json) in added)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(runId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(id, NpgsqlDbType.Integer, ct);
            await copy.WriteAsync(json, NpgsqlDbType.Jsonb, ct);
        }

        await copy.CompleteAsync(ct);
    }

    /// <summary>Moves the run's version (its last seq) and summary (inputs, time span, host, policy) forward.</summary>
    private static async Task AdvanceRunAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, long newVersion, Copied copied, RunInfo? info, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            update runs set version = $2, input_count = input_count + $3,
                first_ts_ns = coalesce(first_ts_ns, $4), last_ts_ns = coalesce($5, last_ts_ns),
                host = coalesce($6, host), policy = coalesce($7, policy), updated_at = $8
            where run_id = $1
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = newVersion });
        cmd.Parameters.Add(new() { Value = (long)copied.Inputs });
        cmd.Parameters.Add(new() { Value = (object?)copied.FirstTs ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new() { Value = (object?)copied.LastTs ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new() { Value = (object?)info?.Host ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)info?.Policy ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = now });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Remembers the batch key with its result, so a retry of the batch is answered without storing it again.</summary>
    private static async Task RecordBatchAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, string batchKey, AppendResult result, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "insert into batches (run_id, batch_key, first_seq, last_seq, input_count, event_count, recorded_at) values ($1, $2, $3, $4, $5, $6, $7)",
            conn,
            tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = batchKey });
        cmd.Parameters.Add(new() { Value = result.FirstSeq });
        cmd.Parameters.Add(new() { Value = result.LastSeq });
        cmd.Parameters.Add(new() { Value = result.InputCount });
        cmd.Parameters.Add(new() { Value = result.EventCount });
        cmd.Parameters.Add(new() { Value = now });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Runs the inline projections in the append's transaction and commits; every cache publishes or drops what the append staged (RunCache).</summary>
    private async Task ProjectAndCommitAsync(NpgsqlTransaction tx, string runId, List<StoredEvent> stored, StepTable steps, CancellationToken ct)
    {
        var committed = false;
        _writeSteps.Stage(runId, steps);
        try
        {
            foreach (var p in _inline)
            {
                await p.ApplyAsync(tx.Connection!, tx, runId, stored, ct);
            }

            await tx.CommitAsync(ct);
            committed = true;
        }
        finally
        {
            _writeSteps.Complete(runId, committed);
            foreach (var p in _inline)
            {
                p.Completed(runId, committed);
            }
        }
    }

    /// <summary>A run's events in seq order from <paramref name="fromSeq"/>, up to a seq and/or a time (inclusive).</summary>
    /// <param name="withoutExplanations">Leave decisions' explanations in the database (readers that only fold state).</param>
    public async IAsyncEnumerable<StoredEvent> ReadAsync(
        string runId,
        long fromSeq = 1,
        long? toSeq = null,
        long? toTsNs = null,
        [EnumeratorCancellation] CancellationToken ct = default,
        bool withoutExplanations = false)
    {
        // A time bound means "every event up to the last one at or before that time": events
        // without a ts take the time of the last timed event before them.
        var upTo = toSeq ?? long.MaxValue;
        if (toTsNs is { } t)
        {
            upTo = Math.Min(upTo, await LastSeqAtOrBeforeAsync(runId, t, ct));
        }

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        var payloadColumn = withoutExplanations ? "(payload - 'explanation')::text" : "payload::text";
        await using var cmd = new NpgsqlCommand(
            $"select seq, type::text, version, ts_ns, {payloadColumn}, {RecordColumn} from events where run_id = $1 and seq >= $2 and seq <= $3 order by seq",
            conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = fromSeq });
        cmd.Parameters.Add(new() { Value = upTo });
        var steps = withoutExplanations ? null : _readSteps.GetValueOrDefault(runId) ?? await ReaderStepsAsync(runId, ct);
        var policies = new PolicyCache();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var row = Row.Read(r);
            (var e, steps) = await DecodeAsync(steps, runId, row, policies, withoutExplanations, ct);
            yield return row.Stored(runId, e);
        }
    }

    /// <summary>
    /// A run's events (fromSeq, toSeq] for a fold that needs no explanations and no stored text: the
    /// two commonest events arrive in their compact fold form (ADR 0007), the others as UTF-8 jsonb
    /// bytes without explanations, decoded without an intermediate string (a rebuild's read).
    /// </summary>
    /// <remarks>
    /// Synchronous on purpose, for a thread of its own: reading 1M rows took 3.2 s sync against 4.9 s async in a fresh process.
    /// The read walks the primary key: for a whole run the planner prefers a parallel seq scan and a sort, which on the
    /// 10M-event run spilled 620 MB to disk and kept three server processes busy (8.8 s each, executed without sending)
    /// where the index scan took one for 6.9 s; in a rebuild both cores are busy, so the total is what counts.
    /// </remarks>
    public IEnumerable<Recorded> ReadForFold(string runId, long afterSeq, long toSeq, CancellationToken ct = default)
    {
        using var conn = dataSource.OpenConnection();
        using var tx = conn.BeginTransaction();
        using (var plan = new NpgsqlCommand("set local enable_seqscan = off; set local enable_bitmapscan = off; set local max_parallel_workers_per_gather = 0", conn, tx))
        {
            plan.ExecuteNonQuery();
        }

        using var cmd = new NpgsqlCommand($"""
            select seq, ts_ns, fold, type::text, version,
                   case when fold is null or length(fold) < 2 or get_byte(fold, 0) not in ({FoldCodec.Format}, {CompactRecord.Format}) then payload - 'explanation' end
            from events where run_id = $1 and seq > $2 and seq <= $3 order by seq
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = afterSeq });
        cmd.Parameters.Add(new() { Value = toSeq });
        using var r = cmd.ExecuteReader(System.Data.CommandBehavior.SequentialAccess);
        var folds = new FoldCodec.Reader();
        while (r.Read())
        {
            ct.ThrowIfCancellationRequested();
            var seq = r.GetInt64(0);
            long? ts = r.IsDBNull(1) ? null : r.GetInt64(1);
            var fold = r.IsDBNull(2) ? null : r.GetFieldValue<byte[]>(2);

            // A row with a readable fold form leaves its type, version and payload unread.
            var e = fold is not null && FoldCodec.Readable(fold) ? folds.Decode(fold, seq) : FromPayload(r, seq);
            yield return new Recorded(seq, ts, e);
        }
    }

    /// <summary>A row of <see cref="ReadForFold"/> without a readable fold form, from its payload (type, version, payload in columns 3-5).</summary>
    private static RunEvent FromPayload(NpgsqlDataReader r, long seq)
    {
        var (type, version) = (r.GetString(3), r.GetInt16(4));
        return r.IsDBNull(5)
            ? throw new InvalidOperationException($"{type} v{version} at seq {seq} is stored in a form this build does not read; upgrade audit")
            : EventSerializer.Deserialize(type, version, r.GetFieldValue<byte[]>(5));
    }

    /// <summary>The events at the given seqs of a run (point lookups by primary key).</summary>
    public async Task<IReadOnlyDictionary<long, StoredEvent>> GetAsync(string runId, IReadOnlyCollection<long> seqs, CancellationToken ct = default)
    {
        var result = new Dictionary<long, StoredEvent>();
        if (seqs.Count == 0)
        {
            return result;
        }

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            $"select seq, type::text, version, ts_ns, payload::text, {RecordColumn} from events where run_id = $1 and seq = any($2)", conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = seqs.ToArray() });
        var rows = new List<Row>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                rows.Add(Row.Read(r));
            }
        }

        var steps = _readSteps.GetValueOrDefault(runId) ?? await ReaderStepsAsync(runId, ct);
        var policies = new PolicyCache();
        foreach (var row in rows)
        {
            (var e, steps) = await DecodeAsync(steps, runId, row, policies, false, ct);
            result[row.Seq] = row.Stored(runId, e);
        }

        return result;
    }

    /// <summary>The record of a row read whole: null for a row with a jsonb payload (version 1), its fold column otherwise.</summary>
    private const string RecordColumn = "case when payload is null then fold end";

    /// <summary>A row as read by <see cref="ReadAsync"/> and <see cref="GetAsync"/>: a jsonb payload, or a compact record.</summary>
    private sealed record Row(long Seq, string Type, short Version, long? TsNs, string? Payload, byte[]? Record)
    {
        public static Row Read(NpgsqlDataReader r) => new(
            r.GetInt64(0), r.GetString(1), r.GetInt16(2), r.IsDBNull(3) ? null : r.GetInt64(3),
            r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetFieldValue<byte[]>(5));

        public StoredEvent Stored(string runId, RunEvent e) => new(runId, Seq, Type, Version, TsNs, Payload, e);
    }

    /// <summary>Decodes a row; a step committed after the read began (with the events using it) reloads the table once.</summary>
    private async ValueTask<(RunEvent Event, StepTable? Steps)> DecodeAsync(StepTable? steps, string runId, Row row, PolicyCache policies, bool withoutExplanations, CancellationToken ct)
    {
        try
        {
            return (Deserialize(steps, row, policies, withoutExplanations), steps);
        }
        catch (StepMissingException)
        {
            steps = await ReaderStepsAsync(runId, ct);
            return (Deserialize(steps, row, policies, withoutExplanations), steps);
        }
    }

    /// <summary>A version-1 row through the JSON reader (its upcaster to the event, ADR 0013), a version-2 row through its compact record.</summary>
    private static RunEvent Deserialize(StepTable? steps, Row row, PolicyCache policies, bool withoutExplanations)
    {
        if (row.Payload is { } payload)
        {
            return EventSerializer.Deserialize(row.Type, row.Version, Encoding.UTF8.GetBytes(payload), steps: steps);
        }

        if (row.Record is not { } record || record.Length < 2 || record[0] != CompactRecord.Format)
        {
            throw new InvalidOperationException($"{row.Type} v{row.Version} at seq {row.Seq} is stored in a form this build does not read; upgrade audit");
        }

        return CompactRecord.Decode(record, row.Seq, withoutExplanations ? null : steps ?? new StepTable(writer: false), policies);
    }

    /// <summary>The readers' table of a run, with every step committed so far.</summary>
    private async Task<StepTable> ReaderStepsAsync(string runId, CancellationToken ct)
    {
        var table = _readSteps.GetOrAdd(runId, _ => new StepTable(writer: false));
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        return await LoadStepsAsync(conn, null, runId, table.MaxId, table, ct);
    }

    private static async Task<StepTable> LoadStepsAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int afterId, StepTable table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("select step_id, step::text from explanation_steps where run_id = $1 and step_id > $2 order by step_id", conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = afterId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            table.LoadJson(r.GetInt32(0), r.GetString(1));
        }

        return table;
    }

    /// <summary>
    /// The rows of the time index (migration 0011, word for word): timed events that are not derived. A derived
    /// event follows its input with the input's time, so the first event after a time is among these.
    /// </summary>
    public const string InputTimes =
        "ts_ns is not null and type not in ('memslot_decided', 'fault_resolved', 'stage2_unmapped', 'stage2_write_protected', 'ioctl_decided', 'divergence_found')";

    /// <summary>The seq of the last event at or before a time: the last timed event at or before it, plus the untimed ones that follow it.</summary>
    public async Task<long> LastSeqAtOrBeforeAsync(string runId, long tsNs, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"""
            select coalesce(
                (select min(seq) - 1 from events where run_id = $1 and ts_ns > $2 and {InputTimes}),
                (select version from runs where run_id = $1), 0)
            """, conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = tsNs });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    public async Task<IReadOnlyList<RunSummary>> ListRunsAsync(CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "select run_id, version, input_count, first_ts_ns, last_ts_ns, host, policy, created_at from runs where version > 0 order by run_id", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<RunSummary>();
        while (await r.ReadAsync(ct))
        {
            list.Add(ReadSummary(r));
        }

        return list;
    }

    public async Task<RunSummary?> GetRunAsync(string runId, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "select run_id, version, input_count, first_ts_ns, last_ts_ns, host, policy, created_at from runs where run_id = $1 and version > 0", conn);
        cmd.Parameters.Add(new() { Value = runId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? ReadSummary(r) : null;
    }

    private static RunSummary ReadSummary(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.IsDBNull(3) ? null : r.GetInt64(3), r.IsDBNull(4) ? null : r.GetInt64(4),
        r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetFieldValue<DateTimeOffset>(7));

    private static async Task<AppendResult?> FindBatch(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, string key, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "select first_seq, last_seq, input_count, event_count from batches where run_id = $1 and batch_key = $2", conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = key });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return null;
        }

        return new AppendResult(AppendStatus.Duplicate, r.GetInt64(0), r.GetInt64(1), r.GetInt32(2), r.GetInt32(3), 0);
    }
}
