using System.Text.Json;
using Audit.Api.Cli;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Cli;

public sealed record CliResult(int Exit, string Out, string Err);

/// <summary>Runs the real command line in-process, against a test schema through --db.</summary>
public static class CliRunner
{
    public static async Task<CliResult> RunAsync(string db, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        // Options go before a "--": what follows it is another program's command line.
        var end = Array.IndexOf(args, "--");
        string[] argv = end < 0 ? [.. args, "--db", db] : [.. args[..end], "--db", db, .. args[end..]];
        var exit = await CommandLine.RunAsync(argv, o, e);
        return new CliResult(exit, o.ToString(), e.ToString());
    }

    /// <summary>Runs a read command with --json, asserts it succeeded and returns the body.</summary>
    public static async Task<JsonElement> JsonAsync(string db, params string[] args)
    {
        var r = await RunAsync(db, [.. args, "--json"]);
        Assert.True(r.Exit == 0, r.Err);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    /// <summary>Ingests a bundled sample (samples/) as the named run.</summary>
    public static async Task IngestSampleAsync(string db, string file, string run) =>
        Assert.Equal(0, (await RunAsync(db, "ingest", Path.Combine(Paths.Samples, file), "--run", run)).Exit);
}
