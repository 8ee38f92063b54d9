using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Audit.Projections.Embedded;

/// <summary>The embedded database could not be had; the message says which and how to fix it.</summary>
public sealed class DatabaseUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <param name="DeadServer">the pid a server that died left in postmaster.pid (the next command recovers it), or null.</param>
public sealed record ClusterStatus(bool Initialized, bool Running, string Home, string DataDir, int? Port, string? SocketDir, string? BinDir, int? DeadServer = null);

/// <summary>
/// A private PostgreSQL cluster under $AUDIT_HOME, started on first use and reused afterwards.
/// Only its owner gets in: the unix socket sits in a 0700 folder and every connection, socket or
/// loopback TCP, needs the generated password kept 0600 in $AUDIT_HOME/password (scram-sha-256;
/// never trust). As root the server runs as the postgres user, since initdb and postgres refuse root.
/// </summary>
public sealed partial class EmbeddedPostgres
{
    private const string DbUser = "audit";
    private const string DbName = "audit";
    private readonly bool _ephemeral;

    public EmbeddedPostgres(string home, bool ephemeral = false)
    {
        Home = Path.GetFullPath(home);
        _ephemeral = ephemeral;
    }

    public string Home { get; }

    private string PasswordFile => Path.Combine(Home, "password");
    private string StateFile => Path.Combine(Home, "cluster.json");
    private string LockFile => Path.Combine(Home, "cluster.lock");
    private string ClusterLink => Path.Combine(Home, "pg");

    private static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;

    public static string DefaultHome() =>
        Environment.GetEnvironmentVariable("AUDIT_HOME") is { Length: > 0 } h
            ? h
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "audit");

    /// <summary>Initializes on first use, starts when stopped, creates the database; returns a connection string.</summary>
    public async Task<string> EnsureStartedAsync(Action<string>? log = null, CancellationToken ct = default)
    {
        try
        {
            return await StartAsync(log, ct);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A home that is a file, on a read-only file system or not ours: the user's to fix, not a bug.
            throw new DatabaseUnavailableException(
                $"the embedded database cannot use {Home}: {ex.Message} Set AUDIT_HOME to a folder this user can write (default ~/.local/share/audit), or name a server with --db or AUDIT_DB.", ex);
        }
    }

    private async Task<string> StartAsync(Action<string>? log, CancellationToken ct)
    {
        Directory.CreateDirectory(Home);
        if (!_ephemeral)
        {
            Chmod(Home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        using var guard = await AcquireLockAsync(ct);
        var bin = PostgresBinaries.Find() ?? throw new DatabaseUnavailableException(
            $"no PostgreSQL server binaries found for the embedded database under {Home}: {PostgresBinaries.InstallHint}");

        var state = ReadState(out var unreadable);
        if (state is null || !File.Exists(Path.Combine(state.DataDir, "PG_VERSION")))
        {
            unreadable ??= state is null ? null : $"it names {state.DataDir}, which holds no cluster";
            // A lost or damaged cluster.json must never cost the data: a whole cluster in the folder is taken back.
            state = Adopt(bin, unreadable, log);
            if (state is null)
            {
                log?.Invoke($"creating the embedded PostgreSQL cluster under {Home} (first use)");
                state = Initialize(bin);
            }
        }

        state = WithRecordedPort(state with { BinDir = File.Exists(Path.Combine(state.BinDir, "pg_ctl")) ? state.BinDir : bin });
        var died = await ClearDeadServerAsync(state, ct);
        if (!IsRunning(state))
        {
            var port = PortIsFree(state.Port) ? state.Port : FreePort();
            state = state with { Port = port };
            WriteState(state);
            if (died is null)
            {
                log?.Invoke($"starting the embedded PostgreSQL on 127.0.0.1:{port} (socket in {state.SocketDir})");
            }

            Start(state);
        }

        died = await CreateDatabaseAsync(state, log, ct) ?? died;
        if (died is not null)
        {
            log?.Invoke($"recovered the embedded database: its server ({died}) had died, so it was restarted and PostgreSQL's crash recovery replayed the write-ahead log; every committed write is kept, an unfinished one was never stored");
        }

        return ConnectionString(state, DbName);
    }

    public ClusterStatus Status()
    {
        var state = CurrentState();
        if (state is null)
        {
            return new ClusterStatus(false, false, Home, ClusterLink, null, null, null);
        }

        var running = IsRunning(state);
        var dead = running ? null : ServerProcesses.RecordedPostmaster(state.DataDir);
        return new ClusterStatus(File.Exists(Path.Combine(state.DataDir, "PG_VERSION")), running, Home, state.DataDir, state.Port, state.SocketDir, state.BinDir, dead);
    }

    /// <summary>Stops the server if it runs. Returns false when there was nothing to stop.</summary>
    public bool Stop(bool immediate = false)
    {
        var state = CurrentState();
        if (state is null || !IsRunning(state))
        {
            return false;
        }

        Run(state.BinDir, "pg_ctl", ["-D", state.DataDir, "-w", "-t", "60", "-m", immediate ? "immediate" : "fast", "stop"], "stopping the embedded PostgreSQL");
        return true;
    }

    /// <summary>Stops the server and removes everything under Home (test clusters only).</summary>
    public void Destroy()
    {
        try
        {
            Stop(immediate: true);
        }
        catch (DatabaseUnavailableException)
        {
            // Already gone; the folder goes anyway.
        }

        var state = CurrentState();
        if (state is not null && !state.DataDir.StartsWith(Home, StringComparison.Ordinal))
        {
            TryDelete(Path.GetDirectoryName(state.DataDir)!);
        }

        TryDelete(Home);
    }

    private State Initialize(string bin)
    {
        // The cluster folder must be reachable by the server user. As root, when the postgres user
        // cannot reach $AUDIT_HOME (a home under /root is 0700), the cluster lives under
        // /var/lib/audit and $AUDIT_HOME/pg links to it; nothing about /root's permissions changes.
        var clusterDir = ClusterLink;
        if (IsRoot && !_ephemeral && !ServerUserCanReach(Home))
        {
            clusterDir = RootClusterDir;
            Directory.CreateDirectory("/var/lib/audit");
            if (Directory.Exists(ClusterLink) || File.Exists(ClusterLink))
            {
                TryDelete(ClusterLink);
            }

            Directory.CreateSymbolicLink(ClusterLink, clusterDir);
        }

        if (Directory.Exists(clusterDir))
        {
            // A half-made cluster from an interrupted first start: start over. A whole one is never removed.
            if (IsWhole(Path.Combine(clusterDir, "data")))
            {
                throw new DatabaseUnavailableException($"{clusterDir} holds a cluster that {StateFile} does not name; refusing to create another over it. Restore {StateFile} or move the folder away.");
            }

            TryDelete(Path.Combine(clusterDir, "data"));
        }

        var dataDir = Path.Combine(clusterDir, "data");
        var socketDir = Path.Combine(clusterDir, "socket");
        Directory.CreateDirectory(clusterDir);
        Directory.CreateDirectory(socketDir);
        const UnixFileMode owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Chmod(clusterDir, owner);
        Chmod(socketDir, owner);

        if (!File.Exists(PasswordFile))
        {
            var pw = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
            File.WriteAllText(PasswordFile, pw);
        }

        Chmod(PasswordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        // initdb reads the password from a file the server user can read; it is removed right after.
        var pwTmp = Path.Combine(clusterDir, ".initpw");
        File.WriteAllText(pwTmp, File.ReadAllText(PasswordFile).Trim() + "\n");
        Chmod(pwTmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (IsRoot)
        {
            Chown(clusterDir);
        }

        try
        {
            Run(bin, "initdb", ["-D", dataDir, "-U", DbUser, "--auth=scram-sha-256", $"--pwfile={pwTmp}", "-E", "UTF8", "--locale=C", "--no-instructions"], "initdb");
        }
        finally
        {
            File.Delete(pwTmp);
        }

        var logFile = Path.Combine(clusterDir, "server.log");
        var conf = new StringBuilder()
            .AppendLine()
            .AppendLine(WholeClusterMark + "; loopback TCP and a unix socket in a 0700 folder only")
            .AppendLine("listen_addresses = '127.0.0.1'")
            .AppendLine($"unix_socket_directories = '{socketDir}'")
            .AppendLine("unix_socket_permissions = 0700")
            .AppendLine("password_encryption = 'scram-sha-256'")
            .AppendLine("shared_buffers = '256MB'")
            .AppendLine("max_connections = 100")
            .AppendLine("max_wal_size = '2GB'");
        if (_ephemeral)
        {
            // Throwaway test clusters trade durability for speed.
            conf.AppendLine("fsync = off").AppendLine("synchronous_commit = off").AppendLine("full_page_writes = off");
        }

        File.AppendAllText(Path.Combine(dataDir, "postgresql.conf"), conf.ToString());
        var state = new State(bin, dataDir, socketDir, logFile, FreePort());
        WriteState(state);
        return state;
    }

    private string ConnectionString(State s, string database)
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = s.SocketDir,
            Port = s.Port,
            Username = DbUser,
            Password = File.ReadAllText(PasswordFile).Trim(),
            Database = database,
            Pooling = true,
            MaxPoolSize = 50,
            Timeout = 30,
            CommandTimeout = 0,
        };
        return b.ConnectionString;
    }

    private async Task<IDisposable> AcquireLockAsync(CancellationToken ct)
    {
        // FileShare.None takes an exclusive flock on Linux; a second start waits for the first.
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            try
            {
                return new FileStream(LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, ct);
            }
            catch (IOException ex)
            {
                throw new DatabaseUnavailableException($"another audit process holds {LockFile} for more than 2 minutes; if none runs, remove the file", ex);
            }
        }
    }

    private static bool PortIsFree(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            l.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static bool ServerUserCanReach(string dir) =>
        RunProcess("runuser", ["-u", "postgres", "--", "test", "-x", dir, "-a", "-r", dir], out _) == 0;

    private static void Chown(string dir)
    {
        if (RunProcess("chown", ["-R", "postgres:postgres", dir], out var output) != 0)
        {
            throw new DatabaseUnavailableException($"cannot hand {dir} to the postgres user: {output.Trim()}");
        }
    }

    private static void Run(string bin, string tool, IReadOnlyList<string> args, string what)
    {
        var (file, argv) = AsServerUser(Path.Combine(bin, tool), args);
        if (RunProcess(file, argv, out var output) != 0)
        {
            throw new DatabaseUnavailableException($"{what} failed: {output.Trim()}");
        }
    }

    private static int RunQuiet(string bin, string tool, IReadOnlyList<string> args)
    {
        var (file, argv) = AsServerUser(Path.Combine(bin, tool), args);
        return RunProcess(file, argv, out _);
    }

    private static (string File, IReadOnlyList<string> Args) AsServerUser(string exe, IReadOnlyList<string> args) =>
        IsRoot ? ("runuser", ["-u", "postgres", "--", exe, .. args]) : (exe, args);

    private static int RunProcess(string file, IReadOnlyList<string> args, out string output)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        try
        {
            using var p = Process.Start(psi)!;

            // pg_ctl start leaves the server holding inherited pipes; read until the tool exits, not until EOF.
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(2));
            output = (stdout.IsCompletedSuccessfully ? stdout.Result : "") + (stderr.IsCompletedSuccessfully ? stderr.Result : "");
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            output = ex.Message;
            return -1;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (new FileInfo(path).LinkTarget is not null)
            {
                File.Delete(path);
            }
            else if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void Chmod(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern uint geteuid();
}
