using Audit.Api.Features.Shared;
using Audit.Api.Features.State;
using Audit.Domain.Addresses;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using System.Diagnostics;
using System.Text.Json.Serialization;
using MediatR;

namespace Audit.Api.Features.Map;

/// <summary>
/// The whole guest address space at a point, compact, for the web UI's map: what GET /runs/{run}/state
/// holds, in columns. With <paramref name="Windows"/> ("LO-HI:PIXELS,...", the parts of the space the map
/// shows and how many pixels each is drawn on) only the stage-2 blocks inside them come, at most one span
/// per pixel (<see cref="MapWindows"/>): the answer grows with the screen, not with the run.
/// </summary>
public sealed record GetMap(string Run, string? At, string? Windows = null) : IRequest<QueryResult<MapView>>;

/// <summary>A populated guest range: the union of every memslot range the run ever had that touches it.</summary>
public sealed record GpaExtent(string Gpa, ulong Size);

/// <summary>
/// What a stage-2 block is: its memory type (with x86's IPAT), permissions, block size and the policy that decided it.
/// With Cells, a summary of the blocks in cells of Granule bytes (ADR 0015): the kind drawn for them, no permissions or policy.
/// </summary>
public sealed record MapKind(string MemType, bool? Ipat, string Perms, ulong Granule, string Policy, bool Cells = false);

/// <summary>
/// Stage-2 blocks as columns, one entry per span of contiguous blocks of one kind (a sweep that mapped
/// 1,000 adjacent 2 MiB blocks alike is one entry with count 1,000). Gaps[i] is the distance in bytes from
/// the end of span i-1 (from 0 for the first) to its start; Lengths[i] its size in bytes; Kinds[i] an index
/// into MapView.Kinds; DecidedAt[i] the latest decision in it. Numbers, not hex: 46,000 blocks were 10.7 MB
/// as state entries and JSON parsing them cost the browser more than the query cost the server.
/// </summary>
public sealed record MapBlocks(IReadOnlyList<ulong> Gaps, IReadOnlyList<ulong> Lengths, IReadOnlyList<int> Kinds, IReadOnlyList<int> Counts, IReadOnlyList<long> DecidedAt);

/// <summary>
/// The body of GET /runs/{run}/map. Lod is true when the blocks were drawn to windows' pixels: a span then
/// stands for every block starting in its pixel (Counts), has the kind covering most of it, and DecidedAt
/// is the latest seq any of them changed at; the why panel asks for the exact page.
/// </summary>
public sealed record MapView(
    string Run, long At, long LastSeq, IReadOnlyList<GpaExtent> Extents, IReadOnlyList<MapKind> Kinds, MapBlocks Blocks,
    IReadOnlyList<MemslotEntry> Memslots, IReadOnlyList<AttributeEntry> Attributes, IReadOnlyList<ShareabilityEntry> Shareability, bool Lod = false)
{
    /// <summary>Where the server spent the request, as a Server-Timing header (not in the body): the browser's resource timing shows it.</summary>
    [JsonIgnore]
    public string? ServerTiming { get; init; }
}

/// <summary>A stretch of stage-2 blocks of one kind to draw: where, how long, how many blocks, and the latest decision in it.</summary>
internal readonly record struct MapPiece(ulong Lo, ulong Size, MapKind Kind, int Count, long DecidedAt);

public sealed class GetMapHandler(EventStore store, TemporalQueries queries) : IRequestHandler<GetMap, QueryResult<MapView>>
{
    public async Task<QueryResult<MapView>> Handle(GetMap request, CancellationToken cancellationToken)
    {
        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<MapView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var (at, error) = await PointInTime.ResolveAsync(store, request.Run, request.At, run.EventCount, cancellationToken);
        if (at is null)
        {
            return QueryResult<MapView>.Bad(error!);
        }

        IReadOnlyList<MapWindow>? windows = null;
        if (request.Windows is not null && !MapWindows.TryParse(request.Windows, out windows, out var bad))
        {
            return QueryResult<MapView>.Bad(bad!);
        }

        var clock = Stopwatch.StartNew();
        var lod = windows is null ? null : await queries.MapAtAsync(request.Run, at.Value, windows, cancellationToken);
        var rows = lod?.Small ?? await queries.RowsAtAsync(request.Run, at.Value, ct: cancellationToken);
        var spans = lod?.Stage2;
        var slots = lod?.MemslotSpansEver ?? await queries.SpansEverAsync(request.Run, "memslots/", cancellationToken);
        var db = clock.Elapsed.TotalMilliseconds;
        var state = GetStateHandler.View(request.Run, at.Value, rows);
        var (kinds, blocks) = spans is null ? Columns(state.Stage2) : MapWindows.Columns(spans);
        var build = clock.Elapsed.TotalMilliseconds - db;
        return QueryResult<MapView>.Ok(new MapView(
            request.Run, at.Value, run.EventCount, Merge(slots.Select(s => ((ulong)s.Lo, (ulong)s.Hi))), kinds, blocks, state.Memslots, state.Attributes, state.Shareability, windows is not null)
        {
            ServerTiming = FormattableString.Invariant($"db;dur={db:0.0};desc=\"{(spans is null ? rows.Count : spans.Count)} rows\", build;dur={build:0.0}"),
        });
    }

    /// <summary>The stage-2 entries (address order) as spans of contiguous blocks of one kind.</summary>
    internal static (IReadOnlyList<MapKind> Kinds, MapBlocks Blocks) Columns(IReadOnlyList<Stage2Entry> entries) =>
        Columns(entries.Select(e =>
        {
            Hex.TryParse(e.Gpa, out var lo);
            return new MapPiece(lo, e.Size, new MapKind(e.MemType, e.Ipat, e.Perms, e.Granule, e.Policy), 1, e.DecidedAt);
        }));

    /// <summary>
    /// Pieces in address order as columns: a piece starting where the last one ended, of the same kind, grows
    /// it. A piece starting inside the last one (two windows' pixels meeting) starts where it ended instead.
    /// </summary>
    internal static (IReadOnlyList<MapKind> Kinds, MapBlocks Blocks) Columns(IEnumerable<MapPiece> pieces)
    {
        var kinds = new List<MapKind>();
        var index = new Dictionary<MapKind, int>();
        List<ulong> gaps = [], lengths = [];
        List<int> kindOf = [], counts = [];
        List<long> decided = [];
        ulong end = 0;
        foreach (var (start, size, kind, count, decidedAt) in pieces)
        {
            var lo = Math.Max(start, end);
            var hi = start + size;
            if (!index.TryGetValue(kind, out var k))
            {
                k = index[kind] = kinds.Count;
                kinds.Add(kind);
            }

            if (counts.Count > 0 && (lo == end && kindOf[^1] == k || hi <= lo))
            {
                lengths[^1] += hi > lo ? hi - lo : 0;
                counts[^1] += count;
                decided[^1] = Math.Max(decided[^1], decidedAt);
            }
            else
            {
                gaps.Add(lo - end);
                lengths.Add(hi - lo);
                kindOf.Add(k);
                counts.Add(count);
                decided.Add(decidedAt);
            }

            end = Math.Max(end, hi);
        }

        return (kinds, new MapBlocks(gaps, lengths, kindOf, counts, decided));
    }

    /// <summary>Overlapping or touching ranges as one extent each, in address order.</summary>
    internal static IReadOnlyList<GpaExtent> Merge(IEnumerable<(ulong Lo, ulong Hi)> ranges)
    {
        var merged = new List<(ulong Lo, ulong Hi)>();
        foreach (var r in ranges.Where(r => r.Hi > r.Lo).OrderBy(r => r.Lo))
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi)
            {
                merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged.Select(m => new GpaExtent(Hex.Format(m.Lo), m.Hi - m.Lo)).ToList();
    }
}
