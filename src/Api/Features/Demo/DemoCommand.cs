using System.CommandLine;
using Audit.Api.Cli;
using Audit.Api.Features.Ingest;
using Audit.Api.Features.Runs;

namespace Audit.Api.Features.Demo;

/// <summary>`audit demo`: the main job on the embedded default database with the bundled samples.</summary>
public static class DemoCommand
{
    /// <summary>Bundled sample -> run id.</summary>
    public static readonly (string Resource, string Run)[] Samples =
    [
        ("samples/gh200-gpu-passthrough.ndjson", "gh"),
        ("samples/x86-snp.ndjson", "snp"),
    ];

    public static Command Build(CommandLine cli)
    {
        var cmd = new Command("demo", "import the bundled sample runs (GH200 GPU passthrough on arm64 6.17, SEV-SNP on x86 6.16) and show what was stored");
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var dir = Path.Combine(Path.GetTempPath(), "audit-samples-" + Environment.UserName);
            Directory.CreateDirectory(dir);
            foreach (var (resource, run) in Samples)
            {
                var file = Extract(resource, dir);
                var result = await mediator.Send(new IngestFiles([file], run), ct);
                if (result.Error is { } e)
                {
                    await cli.Err.WriteLineAsync(e.ToString());
                    return ExitCodes.BadInput;
                }

                var r = result.Runs[0];
                await cli.Out.WriteLineAsync(r.Duplicate
                    ? $"{run}: {Path.GetFileName(file)} already imported (seq {r.FirstSeq}..{r.LastSeq})"
                    : $"{run}: imported {r.Inputs} events from {Path.GetFileName(file)}");
            }

            await cli.Out.WriteLineAsync();
            var runs = await mediator.Send(new ListRuns(), ct);
            Output.Table(
                cli.Out,
                ["RUN", "EVENTS", "DERIVED", "HOST"],
                runs.Select(r => (IReadOnlyList<string>)[r.Run, r.Events.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Derived.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Host ?? "-"]));
            await cli.Out.WriteLineAsync();
            await cli.Out.WriteLineAsync("next: audit runs --json    audit ingest YOUR-TRACE.ndjson --run NAME");
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }

    private static string Extract(string resource, string dir)
    {
        var path = Path.Combine(dir, Path.GetFileName(resource));
        using var s = typeof(DemoCommand).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"sample {resource} is missing from this build");
        using var f = File.Create(path);
        s.CopyTo(f);
        return path;
    }
}
