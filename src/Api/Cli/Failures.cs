using Audit.Projections.Embedded;
using Npgsql;

namespace Audit.Api.Cli;

/// <summary>
/// The last word on a failure no command handled: one line and an exit code of interfaces.md,
/// never a stack trace (AUDIT_DEBUG=1 adds it, for a bug report).
/// </summary>
public static class Failures
{
    public static int Report(Exception ex, TextWriter err)
    {
        var (code, text) = Classify(ex);
        err.WriteLine("audit: " + text);
        if (code == ExitCodes.Internal && Environment.GetEnvironmentVariable("AUDIT_DEBUG") == "1")
        {
            err.WriteLine(ex.ToString());
        }

        return code;
    }

    private static (int Code, string Text) Classify(Exception ex) => ex switch
    {
        // Its message may end with the server log's last lines: those are meant to be read.
        DatabaseUnavailableException => (ExitCodes.DatabaseUnavailable, ex.Message),
        _ when IsUnstorableText(ex) => (ExitCodes.BadInput, "the input holds a character the database cannot store (a NUL, \\u0000, or invalid UTF-8); nothing was stored"),
        OperationCanceledException => (ExitCodes.Interrupted, "interrupted; an unfinished write is never stored"),
        _ when IsConnectionLoss(ex) => (ExitCodes.DatabaseUnavailable,
            $"the database went away ({OneLine(ex.Message)}); an unfinished write is never stored, so run the command again (the embedded database is restarted and recovered by the next command)"),
        _ => (ExitCodes.Internal,
            $"unexpected error ({ex.GetType().Name}: {OneLine(ex.Message)}); this is a bug: report it with the command you ran (AUDIT_DEBUG=1 prints the stack trace)"),
    };

    /// <summary>The server died, was shut down or cannot be reached: not a bug, exit 3.</summary>
    public static bool IsConnectionLoss(Exception ex) => ex switch
    {
        // 08: connection exceptions, 57: operator intervention (shutdown, crash of another backend), 53: out of resources.
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57", StringComparison.Ordinal) || p.SqlState.StartsWith("53", StringComparison.Ordinal),
        NpgsqlException n => n.IsTransient || n.InnerException is IOException or System.Net.Sockets.SocketException or TimeoutException,
        TimeoutException or System.Net.Sockets.SocketException => true,
        _ => ex.InnerException is { } inner && IsConnectionLoss(inner),
    };

    /// <summary>22P05 (\u0000 in jsonb) and 22021 (bad encoding): the input's fault, not the server's, when a reader let it through.</summary>
    public static bool IsUnstorableText(Exception ex) => ex is PostgresException { SqlState: "22P05" or "22021" };

    public static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
