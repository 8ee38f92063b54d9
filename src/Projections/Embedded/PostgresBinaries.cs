using System.Globalization;

namespace Audit.Projections.Embedded;

/// <summary>Finds initdb, pg_ctl and postgres: $AUDIT_PG_BIN, then PATH (links followed), then /usr/lib/postgresql/*/bin (newest).</summary>
public static class PostgresBinaries
{
    public const string InstallHint = "install PostgreSQL server binaries: apt-get install -y postgresql (or set AUDIT_PG_BIN to the folder holding initdb and pg_ctl, or pass --db / AUDIT_DB)";

    public static string? Find()
    {
        if (Environment.GetEnvironmentVariable("AUDIT_PG_BIN") is { Length: > 0 } explicitDir && Complete(explicitDir))
        {
            return explicitDir;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var pgCtl = Path.Combine(dir, "pg_ctl");
            if (!File.Exists(pgCtl))
            {
                continue;
            }

            var resolved = new FileInfo(pgCtl).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? pgCtl;
            var real = Path.GetDirectoryName(resolved)!;
            if (Complete(real))
            {
                return real;
            }
        }

        const string debian = "/usr/lib/postgresql";
        if (Directory.Exists(debian))
        {
            return Directory.GetDirectories(debian)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: double.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(x => Complete(x.Dir))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault();
        }

        return null;
    }

    private static bool Complete(string dir) =>
        File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")) && File.Exists(Path.Combine(dir, "postgres"));
}
