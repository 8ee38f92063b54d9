using Audit.Api.Features.Shared;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Timeline;

/// <summary>
/// The next (or previous) decision after (before) a seq whose explanation cites a rule, or unmap the rule caused:
/// the web UI's search for a rule id. Its gpa is the faulting page for a fault's decision and the first range of an unmap.
/// </summary>
public sealed record FindRule(string Run, string Rule, long After, bool Backwards) : IRequest<QueryResult<FoundEvent>>;

public sealed class FindRuleHandler(EventStore store) : IRequestHandler<FindRule, QueryResult<FoundEvent>>
{
    public async Task<QueryResult<FoundEvent>> Handle(FindRule request, CancellationToken cancellationToken)
    {
        var id = request.Rule.Trim();
        if (Rules.Find(id) is null)
        {
            return QueryResult<FoundEvent>.Bad($"'{request.Rule}' is not a rule id (docs/rules.md lists them, e.g. {Rules.Arm64ForceNonCacheable.Id})");
        }

        if (await store.GetRunAsync(request.Run, cancellationToken) is not { } run)
        {
            return QueryResult<FoundEvent>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var found = request.Backwards
            ? await LastBeforeAsync(request.Run, id, Math.Min(request.After, run.EventCount + 1), cancellationToken)
            : await FirstAfterAsync(request.Run, id, request.After, run.EventCount, cancellationToken);
        if (found is null)
        {
            return QueryResult<FoundEvent>.NotFound($"no decision {(request.Backwards ? "before" : "after")} seq {request.After} in run '{request.Run}' cites {id}");
        }

        var (e, gpa) = found.Value;
        return QueryResult<FoundEvent>.Ok(new FoundEvent(request.Run, e.Seq, e.Type, e.TsNs is { } ts ? Timestamps.Format(ts) : null)
        {
            Gpa = gpa ?? await FaultedGpaAsync(request.Run, e.Event, cancellationToken),
        });
    }

    /// <summary>
    /// Seqs read per query. One read of the whole rest of a 10M-event run was planned as a scan and sort of
    /// the run: 10.6 s before a decision at seq 17 came back. A window is read through the primary key.
    /// </summary>
    private const long Window = 50_000;

    /// <summary>The first citing event after a seq; a fault's page from its input when the scan read it.</summary>
    private async Task<(StoredEvent Event, string? Gpa)?> FirstAfterAsync(string run, string id, long after, long last, CancellationToken ct)
    {
        for (var from = after + 1; from <= last; from += Window)
        {
            if (await FindInAsync(run, id, from, Math.Min(from + Window - 1, last), latest: false, ct) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>The last citing event before a seq: windows read from the seq down, the latest hit of the first window with one.</summary>
    private async Task<(StoredEvent Event, string? Gpa)?> LastBeforeAsync(string run, string id, long before, CancellationToken ct)
    {
        for (var to = before - 1; to >= 1; to -= Window)
        {
            if (await FindInAsync(run, id, Math.Max(to - Window + 1, 1), to, latest: true, ct) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>The first (or latest) citing event in [from, to].</summary>
    private async Task<(StoredEvent Event, string? Gpa)?> FindInAsync(string run, string id, long from, long to, bool latest, CancellationToken ct)
    {
        (long Seq, Gpa Gpa)? lastFault = null;
        (StoredEvent, string?)? found = null;
        await foreach (var e in store.ReadAsync(run, from, to, ct: ct))
        {
            if (e.Event is GuestFaulted f)
            {
                lastFault = (e.Seq, f.Gpa);
            }
            else if (Cites(e.Event, id))
            {
                found = (e, PageOf(e.Event, lastFault));
                if (!latest)
                {
                    break;
                }
            }
        }

        return found;
    }

    private static bool Cites(RunEvent e, string id) => e switch
    {
        Stage2Unmapped u => u.Rule == id,
        DerivedEvent d => Replay.ReplayRunHandler.Steps(d).Any(s => s.Rule == id),
        _ => false,
    };

    /// <summary>The page a citing event is about, when the events already read say it.</summary>
    private static string? PageOf(RunEvent e, (long Seq, Gpa Gpa)? lastFault) => e switch
    {
        FaultResolved f when lastFault is { } l && l.Seq == f.InputSeq => l.Gpa.ToString(),
        Stage2Unmapped u when u.Ranges.Count > 0 => u.Ranges[0].Start.ToString(),
        _ => null,
    };

    /// <summary>A fault's page when its input came before the scan began.</summary>
    private async Task<string?> FaultedGpaAsync(string run, RunEvent e, CancellationToken ct)
    {
        if (e is not FaultResolved f)
        {
            return null;
        }

        var inputs = await store.GetAsync(run, [f.InputSeq], ct);
        return inputs.TryGetValue(f.InputSeq, out var input) && input.Event is GuestFaulted g ? g.Gpa.ToString() : null;
    }
}
