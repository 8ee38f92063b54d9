using System.Globalization;
using Audit.Api.Features.Shared;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Memslots;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using MediatR;

namespace Audit.Api.Features.History;

/// <summary>Every event that changed a gpa's mapping, memslot, backing VMA or shareability, in order.</summary>
public sealed record GetHistory(string Run, string Gpa) : IRequest<QueryResult<HistoryView>>;

public sealed record HistoryInput(long Seq, string Type);

public sealed record HistoryChange(long Seq, string? Ts, string Type, string Projection, string Change, HistoryInput? Input);

/// <summary>The body of `history --json` and GET /runs/{run}/history.</summary>
public sealed record HistoryView(string Run, string Gpa, IReadOnlyList<HistoryChange> Changes);

public sealed class GetHistoryHandler(EventStore store, TemporalQueries queries) : IRequestHandler<GetHistory, QueryResult<HistoryView>>
{
    public async Task<QueryResult<HistoryView>> Handle(GetHistory request, CancellationToken cancellationToken)
    {
        if (!PointInTime.TryParseGpa(request.Gpa, out var gpa))
        {
            return QueryResult<HistoryView>.Bad($"'{request.Gpa}' is not a guest physical address (hex like 0x40000200000, or decimal)");
        }

        if (await store.GetRunAsync(request.Run, cancellationToken) is null)
        {
            return QueryResult<HistoryView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        // The gpa's own rows, then what backed it: the VMA at the memslot's hva, the guest_memfd range.
        var names = await queries.ProjectionNamesAsync(request.Run, cancellationToken);
        var probes = names.Where(n => n is RunProjections.Stage2Name or RunProjections.AttributesName || n.StartsWith("memslots/", StringComparison.Ordinal))
            .Select(n => (n, gpa.Value)).ToList();
        var rows = (await queries.RowsCoveringAsync(request.Run, probes, cancellationToken)).ToList();
        var backing = new List<(string, ulong)>();
        var windows = new List<(string Projection, long From, long To)>();
        foreach (var slot in rows.Where(r => r.Projection.StartsWith("memslots/", StringComparison.Ordinal)))
        {
            var m = RunProjections.De<MemslotData>(slot.Data);
            backing.Add((RunProjections.VmasName, SlotTranslation.HvaOf((ulong)slot.Lo, m.Hva, gpa).Value));
            windows.Add((RunProjections.VmasName, slot.FromSeq, slot.ToSeq ?? long.MaxValue));
            if (m.GuestMemfd is { } fd)
            {
                backing.Add((RunProjections.GmemName(fd), SlotTranslation.GmemOffsetOf((ulong)slot.Lo, m.GuestMemfdOffset ?? 0, gpa)));
                windows.Add((RunProjections.GmemName(fd), slot.FromSeq, slot.ToSeq ?? long.MaxValue));
            }
        }

        if (backing.Count > 0)
        {
            // A backing row counts while the memslot that maps the gpa onto it holds.
            rows.AddRange((await queries.RowsCoveringAsync(request.Run, backing.Distinct().ToList(), cancellationToken))
                .Where(r => windows.Any(w => w.Projection == r.Projection && r.FromSeq < w.To && (r.ToSeq ?? long.MaxValue) > w.From)));
        }

        var changes = new List<(long Seq, string Projection, string Change)>();
        foreach (var r in rows)
        {
            changes.Add((r.FromSeq, r.Projection, Describe(r)));
            var continued = rows.Any(o => o.Projection == r.Projection && o.FromSeq == r.ToSeq);
            if (r.ToSeq is { } to && !continued)
            {
                changes.Add((to, r.Projection, "removed"));
            }
        }

        var seqs = changes.Select(c => c.Seq).Distinct().ToList();
        var events = await store.GetAsync(request.Run, seqs, cancellationToken);
        var inputs = await store.GetAsync(request.Run, events.Values.Select(e => InputOf(e.Event)).OfType<long>().Distinct().ToList(), cancellationToken);
        var list = changes.Distinct().OrderBy(c => c.Seq).ThenBy(c => c.Projection, StringComparer.Ordinal).Select(c =>
        {
            var e = events[c.Seq];
            var input = InputOf(e.Event) is { } i && inputs.TryGetValue(i, out var ie) ? new HistoryInput(i, EventRegistry.For(ie.Event).TraceName) : null;
            return new HistoryChange(c.Seq, e.TsNs is { } ts ? Timestamps.Format(ts) : null, EventRegistry.For(e.Event).TraceName, c.Projection, c.Change, input);
        }).ToList();
        return QueryResult<HistoryView>.Ok(new HistoryView(request.Run, gpa.ToString(), list));
    }

    private static long? InputOf(RunEvent e) => e switch
    {
        FaultResolved f => f.InputSeq,
        MemslotDecided m => m.InputSeq,
        IoctlDecided i => i.InputSeq,
        Stage2Unmapped u => u.CauseSeq,
        Stage2WriteProtected w => w.CauseSeq,
        DivergenceFound d => d.InputSeq,
        _ => null,
    };

    private static string Describe(TemporalRow r)
    {
        var span = $"[{Hex.Format((ulong)r.Lo)}, {Hex.Format((ulong)r.Hi)})";
        switch (r.Projection)
        {
            case RunProjections.Stage2Name:
                var d = Stage2Text.Read(r.Data, r.FromSeq);
                return d.IsMapped
                    ? $"{Domain.Model.Fmt.Shape(d.MemType!.Value, d.Granule!.Value, d.Ipat, d.Perms!.Value)} {span}"
                    : $"{d.Outcome} {span}";
            case RunProjections.VmasName:
                var v = RunProjections.De<VmaData>(r.Data);
                return $"VMA {span} {Domain.Model.Fmt.Perms(v.Prot)} {Domain.Model.Fmt.Flags(v.Flags)} {v.MemType} {v.Backing.ToString().ToLowerInvariant()}{(v.Path is { } path ? " " + path : "")}";
            case RunProjections.AttributesName:
                return (RunProjections.De<AttributeData>(r.Data).Private ? "private " : "shared ") + span;
            case var p when p.StartsWith("memslots/", StringComparison.Ordinal):
                var m = RunProjections.De<MemslotData>(r.Data);
                return $"slot {m.Slot} gpa {span} hva {Hex.Format(m.Hva)} flags {Domain.Model.Fmt.Flags(m.Flags)}";
            default:
                return (RunProjections.De<ShareData>(r.Data).Shared ? "shared " : "private ") + span;
        }
    }
}
