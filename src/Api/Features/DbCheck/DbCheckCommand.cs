using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.DbCheck;

/// <summary>`audit db check [RUN]`: exit 0 when every check passes, 4 with the list of problems, 1 for an unknown run.</summary>
public static class DbCheckCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string?>("RUN") { Description = "one run (default: every run)", Arity = ArgumentArity.ZeroOrOne };
        var samples = new Option<int>("--samples") { Description = "decisions per run at which the projections are compared with the events", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "print the result as JSON" };
        var cmd = new Command("check", """
            checks the stored runs: each run's events are numbered 1..N without a gap and N is its stream version,
            its input count matches, every idempotent batch is whole, and the projections (stage-2, memslots,
            VMAs, attributes, shareability) equal a fold of the events after a sample of decisions.
            Exit 0: all good; 4: the problems are listed (`audit rebuild RUN` repairs projections); 1: no such run.
            Example: audit db check gh
            """)
        {
            run, samples, json,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var result = await mediator.Send(new CheckDatabase(parse.GetValue(run), Math.Max(1, parse.GetValue(samples))), ct);
            if (await cli.ReportAsync(result) is { } code)
            {
                return code;
            }

            var view = result.Value!;
            if (parse.GetValue(json))
            {
                await cli.Out.WriteLineAsync(Output.ToJson(view));
            }
            else
            {
                foreach (var p in view.Problems)
                {
                    await cli.Out.WriteLineAsync($"{p.Run}: {p.Check}: {p.Detail}");
                }

                await cli.Out.WriteLineAsync($"{view.Runs} runs, {view.Events} events, {view.ProjectionSamples} projection samples checked: "
                    + (view.Problems.Count == 0 ? "no problems" : $"{view.Problems.Count} problems"));
            }

            return view.Problems.Count == 0 ? ExitCodes.Ok : ExitCodes.Findings;
        }, ct));
        return cmd;
    }
}
