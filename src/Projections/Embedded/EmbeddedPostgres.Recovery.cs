using Npgsql;

namespace Audit.Projections.Embedded;

/// <summary>
/// Starting after a crash. A server killed with SIGKILL leaves postmaster.pid and its socket lock
/// behind, and its backends keep the shared memory until they notice the postmaster is gone (a
/// long COPY notices late). Starting over them fails or, worse, would let two servers write one
/// folder; so the dead server's processes are waited for (then ended), its lock files removed,
/// and PostgreSQL's own crash recovery replays the write-ahead log on start.
/// </summary>
public sealed partial class EmbeddedPostgres
{
    /// <summary>How long orphaned backends get to exit by themselves, then after SIGQUIT, then after SIGKILL.</summary>
    private static readonly TimeSpan OrphanGrace = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan OrphanAfterSignal = TimeSpan.FromSeconds(5);

    /// <summary>How long a server that runs gets to accept connections (it may be replaying its log after a backend crashed).</summary>
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(90);

    private const int StartTimeoutSeconds = 120;

    private static bool IsRunning(State s) =>
        ServerProcesses.RecordedPostmaster(s.DataDir) is { } pid && ServerProcesses.IsLiveServer(pid);

    /// <summary>
    /// When the recorded server is dead, waits for (then ends) what is left of it and removes its lock
    /// files. Returns how to name the dead server, or null when there was none.
    /// </summary>
    private async Task<string?> ClearDeadServerAsync(State s, CancellationToken ct)
    {
        var pid = ServerProcesses.RecordedPostmaster(s.DataDir);
        if (pid is { } live && ServerProcesses.IsLiveServer(live))
        {
            return null;
        }

        var orphans = ServerProcesses.WorkingIn(s.DataDir);
        if (pid is null && orphans.Count == 0)
        {
            // Stopped cleanly (or never started): nothing to recover.
            return null;
        }

        // The postmaster would SIGQUIT its children on a crash; it cannot now, so this does it once
        // they have had time to notice by themselves.
        if (!await OrphansGoneAsync(s.DataDir, OrphanGrace, ct))
        {
            ServerProcesses.Signal(ServerProcesses.WorkingIn(s.DataDir), ServerProcesses.SigQuit);
            if (!await OrphansGoneAsync(s.DataDir, OrphanAfterSignal, ct))
            {
                ServerProcesses.Signal(ServerProcesses.WorkingIn(s.DataDir), ServerProcesses.SigKill);
                if (!await OrphansGoneAsync(s.DataDir, OrphanAfterSignal, ct))
                {
                    var left = string.Join(", ", ServerProcesses.WorkingIn(s.DataDir));
                    throw new DatabaseUnavailableException(
                        $"the embedded PostgreSQL under {Home} died and its processes {left} do not exit even after SIGKILL; end them (kill -9 {left.Replace(",", "", StringComparison.Ordinal)}) and run the command again");
                }
            }
        }

        foreach (var stale in new[]
        {
            Path.Combine(s.DataDir, "postmaster.pid"),
            Path.Combine(s.SocketDir, $".s.PGSQL.{s.Port}.lock"),
            Path.Combine(s.SocketDir, $".s.PGSQL.{s.Port}"),
        })
        {
            try
            {
                File.Delete(stale);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }

        return pid is { } p ? $"pid {p}" : "pid unknown";
    }

    private static async Task<bool> OrphansGoneAsync(string dataDir, TimeSpan within, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + within;
        while (ServerProcesses.WorkingIn(dataDir).Count > 0)
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await Task.Delay(200, ct);
        }

        return true;
    }

    private void Start(State s)
    {
        var (file, argv) = AsServerUser(Path.Combine(s.BinDir, "pg_ctl"),
            ["-D", s.DataDir, "-l", s.LogFile, "-w", "-t", StartTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-o", $"-p {s.Port}", "start"]);
        if (RunProcess(file, argv, out var output) != 0)
        {
            throw new DatabaseUnavailableException(
                $"the embedded PostgreSQL under {Home} did not start: {output.Trim()}{LogTail(s)}\n"
                + $"What to do: read {s.LogFile}; if the disk is full free space; if another server holds port {s.Port} or the data folder, stop it; "
                + "then run the command again (`audit db status` shows the cluster).");
        }
    }

    /// <summary>Creates the audit database once, waiting while the server replays its log (SQLSTATE 57P03).</summary>
    private async Task CreateDatabaseAsync(State s, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + AnswerWithin;
        while (true)
        {
            try
            {
                await using var ds = NpgsqlDataSource.Create(ConnectionString(s, "postgres"));
                await using var conn = await ds.OpenConnectionAsync(ct);
                await using var check = new NpgsqlCommand("select 1 from pg_database where datname = $1", conn);
                check.Parameters.Add(new() { Value = DbName });
                if (await check.ExecuteScalarAsync(ct) is null)
                {
                    await using var create = new NpgsqlCommand($"create database {DbName}", conn);
                    await create.ExecuteNonQueryAsync(ct);
                }

                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException && DateTime.UtcNow < deadline && NotYet(ex))
            {
                await Task.Delay(250, ct);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                throw new DatabaseUnavailableException(
                    $"the embedded PostgreSQL under {Home} runs but does not answer on {s.SocketDir} (port {s.Port}): {ex.Message}{LogTail(s)}\n"
                    + "What to do: `audit db stop` and run the command again; if it still fails, read the server log above.", ex);
            }
        }
    }

    /// <summary>Starting up or replaying its log (57P03), or not listening yet: worth asking again.</summary>
    private static bool NotYet(Exception ex) =>
        ex is PostgresException { SqlState: "57P03" } || ex.InnerException is System.Net.Sockets.SocketException || ex is TimeoutException;

    /// <summary>The server log's last lines, for a message about a server that would not start or answer.</summary>
    private static string LogTail(State s)
    {
        try
        {
            var lines = File.ReadLines(s.LogFile).TakeLast(12).ToList();
            return lines.Count == 0 ? "" : $"\nLast lines of {s.LogFile}:\n  " + string.Join("\n  ", lines);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
