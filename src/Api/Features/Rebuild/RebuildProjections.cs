using System.CommandLine;
using Audit.Api.Cli;
using Audit.Api.Features.Shared;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using MediatR;

namespace Audit.Api.Features.Rebuild;

/// <summary>Rebuild the temporal projections of one run, or of all runs, from their events.</summary>
public sealed record RebuildProjections(string? Run, Action<string, long, long>? Progress = null) : IRequest<QueryResult<RebuildView>>;

public sealed record RebuiltRun(string Run, int Generation, long Events, bool Resumed);

public sealed record RebuildView(IReadOnlyList<RebuiltRun> Runs);

public sealed class RebuildProjectionsHandler(EventStore store, Rebuilder rebuilder) : IRequestHandler<RebuildProjections, QueryResult<RebuildView>>
{
    public async Task<QueryResult<RebuildView>> Handle(RebuildProjections request, CancellationToken cancellationToken)
    {
        var runs = request.Run is { } one
            ? (await store.GetRunAsync(one, cancellationToken) is null ? [] : [one])
            : (await store.ListRunsAsync(cancellationToken)).Select(r => r.RunId).ToList();
        if (request.Run is not null && runs.Count == 0)
        {
            return QueryResult<RebuildView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var done = new List<RebuiltRun>();
        foreach (var run in runs)
        {
            var r = await rebuilder.RebuildAsync(run, (seq, of) => request.Progress?.Invoke(run, seq, of), cancellationToken);
            done.Add(new RebuiltRun(r.RunId, r.Generation, r.Events, r.Resumed));
        }

        return QueryResult<RebuildView>.Ok(new RebuildView(done));
    }
}

public static class RebuildCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string?>("RUN") { Description = "one run (default: every run)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("rebuild", """
            rebuild the temporal projections from the event log. Readers keep the old projections until the
            new ones have caught up; an interrupted rebuild resumes from its checkpoint when run again.
            """)
        {
            run,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var result = await mediator.Send(new RebuildProjections(parse.GetValue(run), (r, seq, of) => cli.Err.Write($"\r{r}: {seq:N0}/{of:N0} events")), ct);
            if (await cli.ReportAsync(result) is { } code)
            {
                return code;
            }

            await cli.Err.WriteLineAsync();
            foreach (var r in result.Value!.Runs)
            {
                await cli.Out.WriteLineAsync($"{r.Run}: {r.Events:N0} events folded into generation {r.Generation}{(r.Resumed ? " (resumed from a checkpoint)" : "")}");
            }

            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }
}
