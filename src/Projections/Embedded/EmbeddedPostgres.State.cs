using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Audit.Projections.Embedded;

/// <summary>
/// cluster.json, the record of where the cluster lives and on which port. It is a convenience, not
/// the truth: when it is missing, unreadable or names impossible values, a whole cluster found in
/// the cluster folder is taken back (initdb over it would destroy every run), and a running server's
/// own postmaster.pid says which port it listens on.
/// </summary>
public sealed partial class EmbeddedPostgres
{
    /// <summary>The line Initialize appends to postgresql.conf once initdb has succeeded: a data folder holding it is a whole cluster.</summary>
    private const string WholeClusterMark = "# audit: a private cluster";

    /// <summary>Where a root-run cluster lives when the postgres user cannot reach $AUDIT_HOME.</summary>
    private string RootClusterDir => Path.Combine("/var/lib/audit", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Home)))[..12]);

    private sealed record State(string BinDir, string DataDir, string SocketDir, string LogFile, int Port);

    private State? ReadState() => ReadState(out _);

    /// <summary>cluster.json, or null; <paramref name="unreadable"/> says why a file that exists could not be used.</summary>
    private State? ReadState(out string? unreadable)
    {
        unreadable = null;
        if (!File.Exists(StateFile))
        {
            return null;
        }

        try
        {
            if (JsonSerializer.Deserialize<State>(File.ReadAllText(StateFile)) is { BinDir.Length: > 0, DataDir.Length: > 0, SocketDir.Length: > 0, LogFile.Length: > 0, Port: > 0 and <= 65535 } s)
            {
                return s;
            }

            unreadable = "a field is missing or impossible";
        }
        catch (JsonException ex)
        {
            unreadable = ex.Message;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            unreadable = ex.Message;
        }

        return null;
    }

    /// <summary>The whole cluster in this home's cluster folder, with cluster.json written again; null when there is none.</summary>
    private State? Adopt(string bin, string? unreadable, Action<string>? log)
    {
        if (Found(bin) is not { } state)
        {
            return null;
        }

        WriteState(state);
        log?.Invoke($"{StateFile} was {(unreadable is null ? "missing" : $"unreadable ({unreadable})")}; rewrote it for the cluster in {state.DataDir}, whose data is kept");
        return state;
    }

    /// <summary>cluster.json, else what the cluster folder shows (for status and stop, which write nothing).</summary>
    private State? CurrentState() => ReadState() ?? Found(PostgresBinaries.Find() ?? "");

    /// <summary>The whole cluster in this home's cluster folder, or null.</summary>
    private State? Found(string bin)
    {
        foreach (var dir in new[] { ResolvedClusterLink(), RootClusterDir })
        {
            var data = Path.Combine(dir, "data");
            if (IsWhole(data))
            {
                return new State(bin, data, Path.Combine(dir, "socket"), Path.Combine(dir, "server.log"), RecordedPort(data) ?? FreePort());
            }
        }

        return null;
    }

    /// <summary>A running server listens where its postmaster.pid says, whatever cluster.json holds.</summary>
    private State WithRecordedPort(State s)
    {
        if (IsRunning(s) && RecordedPort(s.DataDir) is { } port && port != s.Port)
        {
            s = s with { Port = port };
            WriteState(s);
        }

        return s;
    }

    private string ResolvedClusterLink()
    {
        try
        {
            return new DirectoryInfo(ClusterLink).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? ClusterLink;
        }
        catch (IOException)
        {
            return ClusterLink;
        }
    }

    private static bool IsWhole(string dataDir)
    {
        try
        {
            return File.Exists(Path.Combine(dataDir, "PG_VERSION"))
                && File.ReadAllText(Path.Combine(dataDir, "postgresql.conf")).Contains(WholeClusterMark, StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The port in postmaster.pid (its fourth line), or null.</summary>
    private static int? RecordedPort(string dataDir)
    {
        try
        {
            var line = File.ReadLines(Path.Combine(dataDir, "postmaster.pid")).Skip(3).FirstOrDefault();
            return int.TryParse(line, out var port) && port is > 0 and <= 65535 ? port : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private void WriteState(State s)
    {
        File.WriteAllText(StateFile, JsonSerializer.Serialize(s));
        Chmod(StateFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
