using System.CommandLine;
using Audit.Api.Cli;

namespace Audit.Api.Features.Export;

public static class ExportCommand
{
    public static Command Build(CommandLine cli)
    {
        var run = new Argument<string>("RUN");
        var format = new Option<string>("--format") { Description = "ndjson (re-imports to the same decisions) or perfetto (open in ui.perfetto.dev)", DefaultValueFactory = _ => "ndjson" };
        format.AcceptOnlyFromAmong("ndjson", "perfetto");
        var output = new Option<string?>("--output", "-o") { Description = "write to this file instead of standard output" };
        var cmd = new Command("export", "write a run as NDJSON or as a Perfetto (Chrome trace-event) document") { run, format, output };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var result = await mediator.Send(new ExportRun(parse.GetValue(run)!, parse.GetValue(format)!), ct);
            if (await cli.ReportAsync(result) is { } code)
            {
                return code;
            }

            if (parse.GetValue(output) is { } file)
            {
                try
                {
                    await File.WriteAllTextAsync(file, result.Value!.Content, ct);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // A folder that does not exist or cannot be written: the path given is at fault.
                    await cli.Err.WriteLineAsync($"audit: cannot write {file}: {ex.Message}");
                    return ExitCodes.BadInput;
                }

                await cli.Err.WriteLineAsync($"wrote {file}");
            }
            else
            {
                await cli.Out.WriteAsync(result.Value!.Content);
            }

            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }
}
