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
        ServerProcesses.RecordedPostmaster(s.DataDir) is { } pid && ServerProcesses.IsServerOf(pid, s.DataDir);

    /// <summary>
    /// When the recorded server is dead, waits for (then ends) what is left of it and removes its lock
    /// files. Returns how to name the dead server, or null when there was none.
    /// </summary>
    private async Task<string?> ClearDeadServerAsync(State s, CancellationToken ct)
    {
        var pid = ServerProcesses.RecordedPostmaster(s.DataDir);
        if (pid is { } live && ServerProcesses.IsServerOf(live, s.DataDir))
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

    /// <summary>
    /// Creates the audit database once, waiting while the server replays its log (SQLSTATE 57P03). A
    /// server that runs but answers nothing (hung, stopped) is ended like a crashed one and started
    /// again; returns how to name it then, else null.
    /// </summary>
    private async Task<string?> CreateDatabaseAsync(State s, Action<string>? log, CancellationToken ct)
    {
        var silence = await TryCreateDatabaseAsync(s, ct);
        if (silence is null)
        {
            return null;
        }

        string? ended = null;
        if (ServerProcesses.RecordedPostmaster(s.DataDir) is { } pid && ServerProcesses.IsServerOf(pid, s.DataDir))
        {
            log?.Invoke($"the embedded PostgreSQL (pid {pid}) runs but has not answered for {SilenceBound.TotalSeconds:0} s; ending it and starting it again");
            ServerProcesses.Signal([pid], ServerProcesses.SigKill);
            for (var i = 0; i < 50 && ServerProcesses.IsServerOf(pid, s.DataDir); i++)
            {
                // A signal is delivered, not obeyed at once.
                await Task.Delay(100, ct);
            }

            ended = await ClearDeadServerAsync(s, ct);
            Start(s);
            silence = await TryCreateDatabaseAsync(s, ct);
        }

        if (silence is not null)
        {
            throw new DatabaseUnavailableException(
                $"the embedded PostgreSQL under {Home} runs but does not answer on {s.SocketDir} (port {s.Port}): {silence.Message}{LogTail(s)}\n"
                + "What to do: `audit db stop` and run the command again; if it still fails, read the server log above.", silence);
        }

        return ended;
    }

    /// <summary>How long a running server may answer nothing at all (no error either) before it counts as hung.</summary>
    private static readonly TimeSpan SilenceBound = TimeSpan.FromSeconds(20);

    /// <summary>Null once the database exists; the last failure when the server stayed silent.</summary>
    private async Task<Exception?> TryCreateDatabaseAsync(State s, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + AnswerWithin;
        var silentSince = DateTime.UtcNow;
        while (true)
        {
            try
            {
                var probe = new NpgsqlConnectionStringBuilder(ConnectionString(s, "postgres")) { Timeout = 5 }.ConnectionString;
                await using var ds = NpgsqlDataSource.Create(probe);
                await using var conn = await ds.OpenConnectionAsync(ct);
                await using var check = new NpgsqlCommand("select 1 from pg_database where datname = $1", conn);
                check.Parameters.Add(new() { Value = DbName });
                if (await check.ExecuteScalarAsync(ct) is null)
                {
                    await using var create = new NpgsqlCommand($"create database {DbName}", conn);
                    await create.ExecuteNonQueryAsync(ct);
                }

                return null;
            }
            catch (PostgresException ex) when (ex.SqlState == "57P03" && DateTime.UtcNow < deadline)
            {
                // It answers: starting up or replaying its log.
                silentSince = DateTime.UtcNow;
                await Task.Delay(250, ct);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException && ex is not PostgresException)
            {
                if (DateTime.UtcNow - silentSince >= SilenceBound || DateTime.UtcNow >= deadline)
                {
                    return ex;
                }

                await Task.Delay(250, ct);
            }
        }
    }

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
