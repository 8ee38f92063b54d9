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

    [Fact]
    public async Task A_damaged_or_missing_cluster_json_keeps_the_cluster_and_its_data_and_a_wrong_port_finds_the_running_server()
    {
        var home = Path.Combine(Path.GetTempPath(), "audit-embedded-" + Guid.NewGuid().ToString("N")[..8]);
        var pg = new EmbeddedPostgres(home, ephemeral: true);
        var state = Path.Combine(home, "cluster.json");
        try
        {
            await Exec(await pg.EnsureStartedAsync(), "create table kept (x int); insert into kept values (42)");
            var original = await File.ReadAllTextAsync(state);
            foreach (var damage in new[] { "{\"BinDir\": garbage", "", "[]", "{}", original.Replace(pg.Status().DataDir, "/nowhere", StringComparison.Ordinal), null })
            {
                pg.Stop();
                if (damage is null)
                {
                    File.Delete(state);
                }
                else
                {
                    await File.WriteAllTextAsync(state, damage);
                }

                var logs = new List<string>();
                var cs = await pg.EnsureStartedAsync(logs.Add);
                Assert.DoesNotContain(logs, l => l.Contains("creating", StringComparison.Ordinal));
                Assert.Contains(logs, l => l.Contains("whose data is kept", StringComparison.Ordinal));
                Assert.Equal(42, await Exec(cs, "select x from kept"));
            }

            // The server runs, but cluster.json names another port: its postmaster.pid is believed.
            var port = pg.Status().Port!.Value;
            await File.WriteAllTextAsync(state, (await File.ReadAllTextAsync(state)).Replace($"\"Port\":{port}", "\"Port\":1", StringComparison.Ordinal));
            Assert.Equal(42, await Exec(await pg.EnsureStartedAsync(), "select x from kept"));
            Assert.Equal(port, pg.Status().Port);
        }
        finally
        {
            pg.Destroy();
        }
    }

    private static async Task<object?> Exec(string connectionString, string sql)
    {
        await using var ds = NpgsqlDataSource.Create(connectionString);
        await using var cmd = ds.CreateCommand(sql);
        return await cmd.ExecuteScalarAsync();
    }
}
