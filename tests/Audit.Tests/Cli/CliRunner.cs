using Audit.Api.Cli;

namespace Audit.Tests.Cli;

public sealed record CliResult(int Exit, string Out, string Err);

/// <summary>Runs the real command line in-process, against a test schema through --db.</summary>
public static class CliRunner
{
    public static async Task<CliResult> RunAsync(string db, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var exit = await CommandLine.RunAsync([.. args, "--db", db], o, e);
        return new CliResult(exit, o.ToString(), e.ToString());
    }
}
