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
        // Options go before a "--": what follows it is another program's command line.
        var end = Array.IndexOf(args, "--");
        string[] argv = end < 0 ? [.. args, "--db", db] : [.. args[..end], "--db", db, .. args[end..]];
        var exit = await CommandLine.RunAsync(argv, o, e);
        return new CliResult(exit, o.ToString(), e.ToString());
    }
}
