using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;
using Npgsql;

namespace Audit.Tests.Storage;

[Trait("Category", "Database")]
public sealed class MigratorTests
{
    [Fact]
    public async Task Two_processes_migrating_together_apply_each_file_once()
    {
        var cs = await TestDatabase.ConnectionStringAsync();
        var schema = "mig_" + Guid.NewGuid().ToString("N")[..8];
        await using (var admin = NpgsqlDataSource.Create(cs))
        await using (var cmd = admin.CreateCommand($"create schema {schema}"))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var scoped = new NpgsqlConnectionStringBuilder(cs) { SearchPath = schema }.ConnectionString;
        try
        {
            // Two data sources stand for two processes starting at once.
            await using var a = NpgsqlDataSource.Create(scoped);
            await using var b = NpgsqlDataSource.Create(scoped);
            var results = await Task.WhenAll(Migrator.MigrateAsync(a), Migrator.MigrateAsync(b));

            var all = Migrator.All().Select(m => m.Id).ToList();
            Assert.NotEmpty(all);
            Assert.Equal(all, results.SelectMany(r => r).Order());
            await using var count = a.CreateCommand("select count(*) from schema_migrations");
            Assert.Equal((long)all.Count, (long)(await count.ExecuteScalarAsync())!);

            // Later starts find nothing to do.
            Assert.Empty(await Migrator.MigrateAsync(a));
        }
        finally
        {
            await TestDatabase.DropSchemaAsync(scoped);
        }
    }

    [Fact]
    public void Migration_files_are_numbered_and_ordered()
    {
        var ids = Migrator.All().Select(m => m.Id).ToList();
        Assert.All(ids, id => Assert.Matches(@"^\d{4}_[a-z0-9_]+$", id));
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.Equal(ids.Count, Directory.GetFiles(Path.Combine(Paths.Repo, "migrations"), "*.sql").Length);
    }
}
