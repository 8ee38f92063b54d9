using Audit.Domain.Intervals;

namespace Audit.Projections.Temporal;

/// <summary>A row as it is stored: a span of addresses, the seqs [FromSeq, ToSeq) in which it held, and its data.</summary>
public sealed record TemporalRow(string Projection, long Lo, long Hi, long FromSeq, long? ToSeq, string Data);

/// <summary>
/// The row changes of a batch of events. A row opened and closed within the batch is written once,
/// already closed; one that never held (closed at the seq it opened) is not written at all. A
/// rebuild keeps its rows here until they close (<see cref="TakeClosed"/>), so none is written twice.
/// </summary>
/// <param name="streaming">
/// A rebuild's log: it tracks no open rows, and a row is serialized only when it closes, from the
/// data the view held; the rows that still hold are the view's own (<see cref="RunProjections.Current"/>).
/// Data is then serialized once per row that held instead of once per row opened.
/// </param>
public sealed class ChangeLog(bool streaming = false)
{
    private readonly Dictionary<(string, long, long), TemporalRow> _open = [];
    private readonly List<TemporalRow> _done = [];

    /// <summary>Closes of rows this log never opened (they were written by an earlier batch).</summary>
    public List<(string Projection, long Lo, long FromSeq, long ToSeq)> Closed { get; } = [];

    /// <summary>A view opened [lo, hi) at seq with data.</summary>
    public void Open<T>(string projection, ulong lo, ulong hi, long seq, T data, Func<T, long, string> serialize)
    {
        if (!streaming)
        {
            _open[(projection, (long)lo, seq)] = new TemporalRow(projection, (long)lo, (long)hi, seq, null, serialize(data, seq));
        }
    }

    /// <summary>A view closed its row [lo, hi), open since fromSeq with data, at toSeq.</summary>
    public void Close<T>(string projection, ulong lo, ulong hi, long fromSeq, long toSeq, T data, Func<T, long, string> serialize)
    {
        if (streaming)
        {
            if (toSeq != fromSeq)
            {
                _done.Add(new TemporalRow(projection, (long)lo, (long)hi, fromSeq, toSeq, serialize(data, fromSeq)));
            }

            return;
        }

        if (_open.Remove((projection, (long)lo, fromSeq), out var row))
        {
            if (toSeq != fromSeq)
            {
                _done.Add(row with { ToSeq = toSeq });
            }

            return;
        }

        Closed.Add((projection, (long)lo, fromSeq, toSeq));
    }

    /// <summary>Every row to write for the batch: the closed ones and those that still hold.</summary>
    public IEnumerable<TemporalRow> Rows => _done.Concat(_open.Values);

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
public sealed class TemporalView<T>(string projection, Func<T, long, string> serialize)
    where T : notnull
{
    public readonly record struct Open(long FromSeq, T Data);

    public string Projection { get; } = projection;

    public IntervalMap<Open> Rows { get; } = new();

    public bool TryFind(ulong at, out Interval<Open> row) => Rows.TryFind(at, out row);

    /// <summary>Sets [lo, hi) to data, unless it already holds that data everywhere.</summary>
    public void Set(ulong lo, ulong hi, T data, long seq, ChangeLog log)
    {
        // Most sets of a coarse cell (ADR 0015) land inside one row that already holds the data: answered
        // without building the list of overlapping rows (a tenth of the bytes an append allocated).
        if (Rows.TryFind(lo, out var holding) && holding.End >= hi && EqualityComparer<T>.Default.Equals(holding.Value.Data, data))
        {
            return;
        }

        var old = Rows.Overlapping(lo, hi);
        if (Covers(old, lo, hi) && AllHold(old, data))
        {
            return;
        }

        Cut(old, lo, hi, seq, log);
        Rows.Set(lo, hi, new Open(seq, data));
        log.Open(Projection, lo, hi, seq, data, serialize);
    }

    private static bool AllHold(List<Interval<Open>> rows, T data)
    {
        foreach (var x in rows)
        {
            if (!EqualityComparer<T>.Default.Equals(x.Value.Data, data))
            {
                return false;
            }
        }

        return true;
    }

    public void Remove(ulong lo, ulong hi, long seq, ChangeLog log)
    {
        var old = Rows.Overlapping(lo, hi);
        if (old.Count == 0)
        {
            return;
        }

        Cut(old, lo, hi, seq, log);
        Rows.Remove(lo, hi);
    }

    /// <summary>Replaces the data of the rows inside [lo, hi) by update(data); gaps stay gaps.</summary>
    public void Update(ulong lo, ulong hi, Func<T, T> update, long seq, ChangeLog log)
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
            Cut([x], from, to, seq, log);
            Rows.Set(from, to, new Open(seq, next));
            log.Open(Projection, from, to, seq, next, serialize);
        }
    }

    /// <summary>Loads a row that holds (from the store) without logging it.</summary>
    public void Load(ulong lo, ulong hi, long fromSeq, T data) => Rows.Set(lo, hi, new Open(fromSeq, data));

    public IEnumerable<TemporalRow> Current() =>
        Rows.All().Select(x => new TemporalRow(Projection, (long)x.Start, (long)x.End, x.Value.FromSeq, null, serialize(x.Value.Data, x.Value.FromSeq)));

    /// <summary>Closes the rows crossing [lo, hi) and reopens their parts outside it.</summary>
    private void Cut(List<Interval<Open>> old, ulong lo, ulong hi, long seq, ChangeLog log)
    {
        foreach (var x in old)
        {
            log.Close(Projection, x.Start, x.End, x.Value.FromSeq, seq, x.Value.Data, serialize);
            if (x.Start < lo)
            {
                Rows.Set(x.Start, lo, x.Value with { FromSeq = seq });
                log.Open(Projection, x.Start, lo, seq, x.Value.Data, serialize);
            }

            if (x.End > hi)
            {
                Rows.Set(hi, x.End, x.Value with { FromSeq = seq });
                log.Open(Projection, hi, x.End, seq, x.Value.Data, serialize);
            }
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
