using Audit.Domain.Intervals;

namespace Audit.Projections.Temporal;

/// <summary>A row as it is stored: a span of addresses, the seqs [FromSeq, ToSeq) in which it held, and its data.</summary>
public sealed record TemporalRow(string Projection, long Lo, long Hi, long FromSeq, long? ToSeq, long? FromTs, long? ToTs, string Data);

/// <summary>
/// The row changes of a batch of events. A row opened and closed within the batch is written once,
/// already closed; one that never held (closed at the seq it opened) is not written at all. A
/// rebuild keeps its rows here until they close (<see cref="TakeClosed"/>), so none is written twice.
/// </summary>
/// <param name="streaming">
/// A rebuild's log: it tracks no open rows, and a view closing a row hands it over whole, made from
/// the row the view holds (<see cref="Done"/>); the rows that still hold are the view's own
/// (<see cref="RunProjections.Current"/>). Data is then serialized once per row that held, when it
/// closes, instead of once per row opened.
/// </param>
public sealed class ChangeLog(bool streaming = false)
{
    private readonly Dictionary<(string, long, long), TemporalRow> _open = [];
    private readonly List<TemporalRow> _done = [];

    /// <summary>Closes of rows this log never opened (they were written by an earlier batch).</summary>
    public List<(string Projection, long Lo, long FromSeq, long ToSeq, long? ToTs)> Closed { get; } = [];

    public bool Streaming => streaming;

    public void Open(TemporalRow row) => _open[(row.Projection, row.Lo, row.FromSeq)] = row;

    /// <summary>A streaming log's closed row, whole.</summary>
    public void Done(TemporalRow row) => _done.Add(row);

    public void Close(string projection, long lo, long fromSeq, long toSeq, long? toTs)
    {
        if (_open.Remove((projection, lo, fromSeq), out var row))
        {
            if (toSeq != fromSeq)
            {
                _done.Add(row with { ToSeq = toSeq, ToTs = toTs });
            }

            return;
        }

        Closed.Add((projection, lo, fromSeq, toSeq, toTs));
    }

    /// <summary>Every row to write for the batch: the closed ones and those that still hold.</summary>
    public IEnumerable<TemporalRow> Rows => _done.Concat(_open.Values);

    /// <summary>The rows that still hold.</summary>
    public IReadOnlyCollection<TemporalRow> OpenRows => _open.Values;

    /// <summary>The rows closed since the last call, whole: what a rebuild writes as it goes.</summary>
    public List<TemporalRow> TakeClosed()
    {
        var rows = new List<TemporalRow>(_done);
        _done.Clear();
        return rows;
    }

    public void Clear()
    {
        _open.Clear();
        _done.Clear();
        Closed.Clear();
    }
}

/// <summary>
/// The rows of one projection that hold now, over an interval map. Set, Remove and Update change
/// the map and log the rows they close and open: a trimmed row closes and its remainders open anew.
/// </summary>
public sealed class TemporalView<T>(string projection, Func<T, string> serialize)
    where T : notnull
{
    public readonly record struct Open(long FromSeq, long? FromTs, T Data);

    public string Projection { get; } = projection;

    public IntervalMap<Open> Rows { get; } = new();

    public bool TryFind(ulong at, out Interval<Open> row) => Rows.TryFind(at, out row);

    /// <summary>Sets [lo, hi) to data, unless it already holds that data everywhere.</summary>
    public void Set(ulong lo, ulong hi, T data, long seq, long? ts, ChangeLog log)
    {
        var old = Rows.Overlapping(lo, hi);
        if (Covers(old, lo, hi) && old.All(x => EqualityComparer<T>.Default.Equals(x.Value.Data, data)))
        {
            return;
        }

        Cut(old, lo, hi, seq, ts, log);
        Rows.Set(lo, hi, new Open(seq, ts, data));
        Opened(log, lo, hi, seq, ts, data);
    }

    public void Remove(ulong lo, ulong hi, long seq, long? ts, ChangeLog log)
    {
        var old = Rows.Overlapping(lo, hi);
        if (old.Count == 0)
        {
            return;
        }

        Cut(old, lo, hi, seq, ts, log);
        Rows.Remove(lo, hi);
    }

    /// <summary>Replaces the data of the rows inside [lo, hi) by update(data); gaps stay gaps.</summary>
    public void Update(ulong lo, ulong hi, Func<T, T> update, long seq, long? ts, ChangeLog log)
    {
        foreach (var x in Rows.Overlapping(lo, hi))
        {
            var next = update(x.Value.Data);
            if (EqualityComparer<T>.Default.Equals(next, x.Value.Data))
            {
                continue;
            }

            var from = Math.Max(x.Start, lo);
            var to = Math.Min(x.End, hi);
            Cut([x], from, to, seq, ts, log);
            Rows.Set(from, to, new Open(seq, ts, next));
            Opened(log, from, to, seq, ts, next);
        }
    }

    /// <summary>Loads a row that holds (from the store) without logging it.</summary>
    public void Load(ulong lo, ulong hi, long fromSeq, long? fromTs, T data) => Rows.Set(lo, hi, new Open(fromSeq, fromTs, data));

    public IEnumerable<TemporalRow> Current() =>
        Rows.All().Select(x => new TemporalRow(Projection, (long)x.Start, (long)x.End, x.Value.FromSeq, null, x.Value.FromTs, null, serialize(x.Value.Data)));

    /// <summary>Closes the rows crossing [lo, hi) and reopens their parts outside it.</summary>
    private void Cut(List<Interval<Open>> old, ulong lo, ulong hi, long seq, long? ts, ChangeLog log)
    {
        foreach (var x in old)
        {
            if (!log.Streaming)
            {
                log.Close(Projection, (long)x.Start, x.Value.FromSeq, seq, ts);
            }
            else if (x.Value.FromSeq != seq)
            {
                log.Done(new TemporalRow(Projection, (long)x.Start, (long)x.End, x.Value.FromSeq, seq, x.Value.FromTs, ts, serialize(x.Value.Data)));
            }

            if (x.Start < lo)
            {
                Rows.Set(x.Start, lo, x.Value with { FromSeq = seq, FromTs = ts });
                Opened(log, x.Start, lo, seq, ts, x.Value.Data);
            }

            if (x.End > hi)
            {
                Rows.Set(hi, x.End, x.Value with { FromSeq = seq, FromTs = ts });
                Opened(log, hi, x.End, seq, ts, x.Value.Data);
            }
        }
    }

    private void Opened(ChangeLog log, ulong lo, ulong hi, long seq, long? ts, T data)
    {
        if (!log.Streaming)
        {
            log.Open(new TemporalRow(Projection, (long)lo, (long)hi, seq, null, ts, null, serialize(data)));
        }
    }

    private static bool Covers(List<Interval<Open>> rows, ulong lo, ulong hi)
    {
        var cursor = lo;
        foreach (var r in rows)
        {
            if (r.Start > cursor)
            {
                return false;
            }

            cursor = Math.Max(cursor, r.End);
        }

        return cursor >= hi;
    }
}
