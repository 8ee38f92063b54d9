using Audit.Api.Features.Shared;
using Audit.Domain.Addresses;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using MediatR;

namespace Audit.Api.Features.State;

/// <summary>The stage-2 mappings, memslots, VMAs, attributes and shareability at a point (default: the end).</summary>
public sealed record GetState(string Run, string? At, string? Gpa) : IRequest<QueryResult<StateView>>;

public sealed record Stage2Entry(string Gpa, ulong Size, ulong Granule, string MemType, bool? Ipat, string Perms, string Policy, long DecidedAt, long Since);

public sealed record MemslotEntry(int Slot, int AsId, string Gpa, ulong Size, string Hva, string Flags, int? GuestMemfd, string? GuestMemfdOffset, long Since);

public sealed record VmaEntry(string Start, ulong Length, string Prot, string Flags, string? MemType, string Backing, string? Path, long Since);

public sealed record AttributeEntry(string Gpa, ulong Size, bool Private, long Since);

public sealed record ShareabilityEntry(int Fd, string Offset, ulong Size, bool Shared, long Since);

/// <summary>The body of `state --json` and GET /runs/{run}/state.</summary>
public sealed record StateView(
    string Run,
    long At,
    IReadOnlyList<Stage2Entry> Stage2,
    IReadOnlyList<MemslotEntry> Memslots,
    IReadOnlyList<VmaEntry> Vmas,
    IReadOnlyList<AttributeEntry> Attributes,
    IReadOnlyList<ShareabilityEntry> Shareability);

public sealed class GetStateHandler(EventStore store, TemporalQueries queries) : IRequestHandler<GetState, QueryResult<StateView>>
{
    public async Task<QueryResult<StateView>> Handle(GetState request, CancellationToken cancellationToken)
    {
        (ulong Lo, ulong Hi)? range = null;
        if (request.Gpa is not null)
        {
            if (!GpaRanges.TryParse(request.Gpa, out var r))
            {
                return QueryResult<StateView>.Bad($"--gpa '{request.Gpa}' is not a gpa, START-END or START+SIZE (hex or decimal)");
            }

            range = r;
        }

        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<StateView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var (at, error) = await PointInTime.ResolveAsync(store, request.Run, request.At, run.EventCount, cancellationToken);
        if (at is null)
        {
            return QueryResult<StateView>.Bad(error!);
        }

        var rows = await queries.RowsAtAsync(request.Run, at.Value, range?.Lo, range?.Hi, cancellationToken);
        return QueryResult<StateView>.Ok(View(request.Run, at.Value, rows));
    }

    internal static StateView View(string run, long at, IReadOnlyList<TemporalRow> rows)
    {
        var stage2 = new List<Stage2Entry>();
        var slots = new List<MemslotEntry>();
        var vmas = new List<VmaEntry>();
        var attrs = new List<AttributeEntry>();
        var share = new List<ShareabilityEntry>();
        foreach (var r in rows)
        {
            var lo = Hex.Format((ulong)r.Lo);
            var size = (ulong)(r.Hi - r.Lo);
            switch (r.Projection)
            {
                case RunProjections.Stage2Name:
                    var d = Stage2Text.Read(r.Data, r.FromSeq);
                    if (d.IsMapped)
                    {
                        stage2.Add(new Stage2Entry(lo, size, d.Granule!.Value, d.MemType!.Value.ToString(), d.Ipat, Fmt.Perms(d.Perms!.Value), d.Policy!, d.DecidedAt!.Value, r.FromSeq));
                    }

                    break;
                case RunProjections.VmasName:
                    var v = RunProjections.De<VmaData>(r.Data);
                    vmas.Add(new VmaEntry(lo, size, Fmt.Perms(v.Prot), Fmt.Flags(v.Flags), v.MemType?.ToString(), v.Backing.ToString().ToLowerInvariant(), v.Path, r.FromSeq));
                    break;
                case RunProjections.AttributesName:
                    attrs.Add(new AttributeEntry(lo, size, RunProjections.De<AttributeData>(r.Data).Private, r.FromSeq));
                    break;
                case var p when p.StartsWith("memslots/", StringComparison.Ordinal):
                    var m = RunProjections.De<MemslotData>(r.Data);
                    slots.Add(new MemslotEntry(m.Slot, m.AsId, lo, size, Hex.Format(m.Hva), Fmt.Flags(m.Flags), m.GuestMemfd, m.GuestMemfdOffset is { } o ? Hex.Format(o) : null, r.FromSeq));
                    break;
                case var p when p.StartsWith("gmem/", StringComparison.Ordinal):
                    share.Add(new ShareabilityEntry(int.Parse(p["gmem/".Length..], System.Globalization.CultureInfo.InvariantCulture), lo, size, RunProjections.De<ShareData>(r.Data).Shared, r.FromSeq));
                    break;
            }
        }

        return new StateView(run, at, stage2, slots.OrderBy(s => s.AsId).ThenBy(s => s.Slot).ToList(), vmas, attrs, share);
    }
}

public static class GpaRanges
{
    /// <summary>"A" (one address), "A-B" (end exclusive) or "A+SIZE".</summary>
    public static bool TryParse(string text, out (ulong Lo, ulong Hi) range)
    {
        range = default;
        var plus = text.IndexOf('+', StringComparison.Ordinal);
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (plus > 0 && Hex.TryParse(text[..plus], out var a) && Hex.TryParse(text[(plus + 1)..], out var size) && size > 0)
        {
            range = (a, a + size);
            return true;
        }

        if (dash > 0 && Hex.TryParse(text[..dash], out var s) && Hex.TryParse(text[(dash + 1)..], out var e) && e > s)
        {
            range = (s, e);
            return true;
        }

        if (Hex.TryParse(text, out var single))
        {
            range = (single, single + 1);
            return true;
        }

        return false;
    }
}
