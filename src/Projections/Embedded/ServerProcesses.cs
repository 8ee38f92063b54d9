using System.Runtime.InteropServices;

namespace Audit.Projections.Embedded;

/// <summary>
/// What is left of a PostgreSQL server in a data folder: the postmaster named by postmaster.pid and
/// the processes still working in the folder. Read from /proc, because a postmaster killed with
/// SIGKILL leaves its pid file behind, its pid may linger as a zombie (where nobody reaps it, as in
/// a container) or be reused, and its backends go on holding the shared memory until they notice.
/// </summary>
internal static class ServerProcesses
{
    private const string ServerName = "postgres";

    /// <summary>The postmaster's pid from postmaster.pid, or null when there is no (readable) pid file.</summary>
    public static int? RecordedPostmaster(string dataDir)
    {
        var pidFile = Path.Combine(dataDir, "postmaster.pid");
        try
        {
            var first = File.ReadLines(pidFile).FirstOrDefault();
            return int.TryParse(first, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>True when <paramref name="pid"/> is a live (not zombie) PostgreSQL process.</summary>
    public static bool IsLiveServer(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
        var open = stat.IndexOf('(', StringComparison.Ordinal);
        var close = stat.LastIndexOf(')');
        if (open < 0 || close < open || close + 2 >= stat.Length)
        {
            return false;
        }

        var comm = stat[(open + 1)..close];
        var state = stat[close + 2];
        return comm.StartsWith(ServerName, StringComparison.Ordinal) && state is not ('Z' or 'X');
    }

    /// <summary>
    /// True when <paramref name="pid"/> is a live server of this data folder: after a crash the pid in
    /// postmaster.pid may belong to another program, or to the server of another cluster.
    /// </summary>
    public static bool IsServerOf(int pid, string dataDir) => IsLiveServer(pid) && WorksIn(pid, RealPath(dataDir));

    private static bool WorksIn(int pid, string realDataDir)
    {
        try
        {
            return string.Equals(new FileInfo($"/proc/{pid}/cwd").LinkTarget, realDataDir, StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Live PostgreSQL processes whose working folder is <paramref name="dataDir"/> (a server chdirs there).</summary>
    public static IReadOnlyList<int> WorkingIn(string dataDir)
    {
        var target = RealPath(dataDir);
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            if (WorksIn(pid, target) && IsLiveServer(pid))
            {
                found.Add(pid);
            }
        }

        return found;
    }

    /// <summary>Sends <paramref name="signal"/> to each pid; a pid already gone is skipped.</summary>
    public static void Signal(IEnumerable<int> pids, int signal)
    {
        foreach (var pid in pids)
        {
            _ = kill(pid, signal);
        }
    }

    public const int SigQuit = 3;
    public const int SigKill = 9;

    private static string RealPath(string path)
    {
        var resolved = realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return Path.GetFullPath(path);
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved) ?? path;
        }
        finally
        {
            free(resolved);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr ptr);
}
