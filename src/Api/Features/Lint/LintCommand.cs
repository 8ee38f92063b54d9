using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.Lint;

public static class LintCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN") { Description = "the run (see `audit runs`)" };
        var format = new Option<string>("--format") { Description = "text (default), json (the GET /runs/{run}/lint body) or sarif (SARIF 2.1.0)", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json", "sarif");
        var failOn = new Option<string>("--fail-on") { Description = "exit 4 when a finding at or above this severity exists: error (default), warning or never", DefaultValueFactory = _ => "error" };
        failOn.AcceptOnlyFromAmong("error", "warning", "never");
        var json = new Option<bool>("--json") { Description = "same as --format json" };
        var cmd = new Command("lint", """
            findings about suspicious or costly mappings in a run: cacheable PFNMAP the host cannot
            guarantee, Device where Normal-NC was possible, lost huge pages, failed guest_memfd
            conversions, model divergences, refused memslots. Each names a rule, the events it cites
            (seq) and what to do. Exit 4 when a finding at or above --fail-on exists.
            Example: audit lint gh --format sarif --fail-on warning > gh.sarif
            """)
        {
            run, format, failOn, json,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (m, _) =>
        {
            var result = await m.Send(new GetLint(parse.GetValue(run)!), ct);
            if (await cli.ReportAsync(result) is { } code)
            {
                return code;
            }

            var report = result.Value!;
            var shape = parse.GetValue(json) ? "json" : parse.GetValue(format);
            await cli.Out.WriteLineAsync(shape switch
            {
                "json" => Output.ToJson(report),
                "sarif" => Sarif.From(report).ToJsonString(Output.Json),
                _ => Text(report),
            });
            return report.Fails(Threshold(parse.GetValue(failOn))) ? ExitCodes.LintFindings : ExitCodes.Ok;
        }, ct));
        return cmd;
    }

    internal static Severity? Threshold(string? failOn) => failOn switch
    {
        "never" => null,
        "warning" => Severity.Warning,
        _ => Severity.Error,
    };

    private static string Text(LintReport r)
    {
        var w = new StringWriter();
        var s = r.Summary;
        w.WriteLine($"{r.Run} under {r.Policy}: {r.Findings.Count} finding(s): {s.Errors} error(s), {s.Warnings} warning(s), {s.Notes} note(s)");
        foreach (var f in r.Findings)
        {
            w.WriteLine();
            w.WriteLine($"{f.Severity.ToString().ToLowerInvariant()} [{f.RuleId}] {f.Message}");
            w.WriteLine($"  events: {(f.Seqs.Count == 0 ? "-" : string.Join(", ", f.Seqs.Select(q => "seq " + q)))}");
            w.WriteLine($"  fix: {f.Fix}");
        }

        return w.ToString().TrimEnd();
    }
}
