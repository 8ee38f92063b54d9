using Audit.Projections.Embedded;
using Npgsql;

namespace Audit.Tests.Storage;

/// <summary>The embedded default: private, reused, one start at a time. Needs the local PostgreSQL binaries (./test.sh installs them).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Trait("Category", "Database")]
public sealed class EmbeddedPostgresTests
{
    [Fact]
    public async Task Starts_once_under_concurrent_callers_admits_only_its_owner_and_is_reused_after_a_stop()
    {
        var home = Path.Combine(Path.GetTempPath(), "audit-embedded-" + Guid.NewGuid().ToString("N")[..8]);
        var pg = new EmbeddedPostgres(home, ephemeral: true);
        try
        {
            var logs = new System.Collections.Concurrent.ConcurrentBag<string>();
            var both = await Task.WhenAll(
                Task.Run(() => pg.EnsureStartedAsync(logs.Add)),
                Task.Run(() => new EmbeddedPostgres(home, ephemeral: true).EnsureStartedAsync(logs.Add)));
            Assert.Equal(both[0], both[1]);
            Assert.Single(logs, l => l.Contains("creating", StringComparison.Ordinal));

            var status = pg.Status();
            Assert.True(status.Running);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(status.SocketDir!));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(home, "password")));

            // No trust anywhere, and the password really is required over TCP.
            var hba = File.ReadAllLines(Path.Combine(status.DataDir, "pg_hba.conf")).Where(l => !l.TrimStart().StartsWith('#') && l.Trim().Length > 0);
            Assert.All(hba, l => Assert.DoesNotContain("trust", l, StringComparison.Ordinal));
            var tcpNoPassword = new NpgsqlConnectionStringBuilder(both[0]) { Host = "127.0.0.1", Password = "wrong" }.ConnectionString;
            await using (var conn = new NpgsqlConnection(tcpNoPassword))
            {
                var ex = await Assert.ThrowsAsync<PostgresException>(() => conn.OpenAsync());
                Assert.Equal("28P01", ex.SqlState);
            }

            Assert.True(pg.Stop());
            Assert.False(pg.Status().Running);
            logs.Clear();
            var again = await pg.EnsureStartedAsync(logs.Add);
            Assert.DoesNotContain(logs, l => l.Contains("creating", StringComparison.Ordinal));
            await using var ds = NpgsqlDataSource.Create(again);
            await using var cmd = ds.CreateCommand("select current_user");
            Assert.Equal("audit", await cmd.ExecuteScalarAsync());
        }
        finally
        {
            pg.Destroy();
        }

        Assert.False(Directory.Exists(home));
    }
}
