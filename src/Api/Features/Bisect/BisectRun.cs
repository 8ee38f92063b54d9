using Audit.Api.Features.Shared;
using Audit.Api.Features.State;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Bisect;

/// <summary>Bisect a stored run across the kernel releases of its flavour (GET /runs/{run}/bisect).</summary>
/// <param name="Progress">Told how far a large run got (the command line prints it on stderr).</param>
public sealed record BisectRun(string Run, string? From = null, string? To = null, string? Gpa = null, Action<string>? Progress = null) : IRequest<QueryResult<BisectView>>;

public sealed record ReleaseView(string From, string To, string Policy);

/// <summary>The body of `bisect --json` and GET /runs/{run}/bisect.</summary>
public sealed record BisectView(string Run, string Flavour, string RecordedPolicy, IReadOnlyList<ReleaseView> Releases, int Inputs, IReadOnlyList<BisectRow> Rows);

public sealed class BisectRunHandler(EventStore store) : IRequestHandler<BisectRun, QueryResult<BisectView>>
{
    /// <summary>Runs with at least this many inputs report progress; small ones answer in well under a second.</summary>
    public const int LargeRun = 20_000;

    public async Task<QueryResult<BisectView>> Handle(BisectRun request, CancellationToken cancellationToken)
    {
        if (Bounds(request, out var error) is not { } bounds)
        {
            return QueryResult<BisectView>.Bad(error);
        }

        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<BisectView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var inputs = new List<(long, InputEvent)>();
        await foreach (var e in store.ReadAsync(request.Run, ct: cancellationToken, withoutExplanations: true))
        {
            if (e.Event is InputEvent input)
            {
                inputs.Add((e.Seq, input));
            }
        }

        var recorded = Policies.Find(run.Policy ?? "") ?? Policies.DefaultFor(inputs.Select(i => i.Item2).OfType<HostDescribed>().FirstOrDefault()
            ?? new HostDescribed(Arch.Arm64, "", null, 4096, HostCaps.None));
        var releases = Within(Releases.Of(recorded), bounds.From, bounds.To);
        var rows = Bisection.Run(inputs, releases, bounds.Gpa, inputs.Count >= LargeRun ? request.Progress : null);
        return QueryResult<BisectView>.Ok(new BisectView(request.Run, Releases.FlavourOf(recorded), recorded.Id,
            releases.Select(r => new ReleaseView(r.From.ToString(), r.To.ToString(), r.Policy.Id)).ToList(), inputs.Count, rows));
    }

    private static (KernelVersion From, KernelVersion To, (ulong, ulong)? Gpa)? Bounds(BisectRun r, out string error)
    {
        error = "";
        var from = r.From is null ? Releases.Oldest : Version(r.From, "--from", ref error);
        var to = r.To is null ? Releases.Newest : Version(r.To, "--to", ref error);
        (ulong, ulong)? gpa = null;
        if (r.Gpa is not null)
        {
            if (GpaRanges.TryParse(r.Gpa, out var range))
            {
                gpa = range;
            }
            else
            {
                error = $"--gpa '{r.Gpa}' is not a gpa, START-END or START+SIZE (hex or decimal)";
            }
        }

        if (error.Length == 0 && from > to)
        {
            error = $"--from {from} is after --to {to}";
        }

        return error.Length == 0 ? (from, to, gpa) : null;
    }

    private static KernelVersion Version(string text, string option, ref string error)
    {
        var v = KernelVersion.Parse(text);
        if (v == KernelVersion.Newest || v < Releases.Oldest || v > Releases.Newest)
        {
            error = $"{option} '{text}' is not a kernel version in the modelled range {Releases.Oldest}-{Releases.Newest} (e.g. 6.9)";
        }

        return v;
    }

    /// <summary>The release spans that overlap [from, to], clamped to it.</summary>
    private static List<Release> Within(IReadOnlyList<Release> all, KernelVersion from, KernelVersion to) =>
        all.Where(r => r.To >= from && r.From <= to)
            .Select(r => r with { From = r.From < from ? from : r.From, To = r.To > to ? to : r.To })
            .ToList();
}
