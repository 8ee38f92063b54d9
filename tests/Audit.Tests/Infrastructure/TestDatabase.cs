using Audit.Projections.Embedded;
using Audit.Projections.Storage;
using Npgsql;

namespace Audit.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL every database test uses: $AUDIT_TEST_DB when set, otherwise one private
/// throwaway cluster per test run, started from the local binaries and removed at exit. When
/// neither can be had the tests fail with the reason; they are never skipped.
/// </summary>
public static class TestDatabase
{
    private static readonly Lazy<Task<string>> Server = new(StartAsync);
    private static EmbeddedPostgres? _cluster;

    public static Task<string> ConnectionStringAsync() => Server.Value;

    private static async Task<string> StartAsync()
    {
        if (Environment.GetEnvironmentVariable("AUDIT_TEST_DB") is { Length: > 0 } cs)
        {
            return cs;
        }

        SweepStaleClusters();
        var home = Path.Combine(Path.GetTempPath(), "audit-test-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        _cluster = new EmbeddedPostgres(home, ephemeral: true);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => _cluster.Destroy();
        try
        {
            return await _cluster.EnsureStartedAsync();
        }
        catch (DatabaseUnavailableException ex)
        {
            throw new InvalidOperationException("database tests need PostgreSQL: set AUDIT_TEST_DB or install the server binaries (./test.sh does as root). " + ex.Message, ex);
        }
    }

    /// <summary>
    /// Removes throwaway clusters left by test runs whose process is gone (a test host may be ended
    /// before its exit handler finishes).
    /// </summary>
    private static void SweepStaleClusters()
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), "audit-test-*"))
        {
            var parts = Path.GetFileName(dir).Split('-');
            if (parts.Length == 4 && int.TryParse(parts[2], out var pid) && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                new EmbeddedPostgres(dir, ephemeral: true).Destroy();
            }
        }
    }

    /// <summary>A fresh schema with every migration applied (or those up to <paramref name="through"/>); its connection string selects it by search path.</summary>
    public static async Task<string> CreateSchemaAsync(string prefix, string? through = null)
    {
        var cs = await ConnectionStringAsync();
        var schema = (prefix.ToLowerInvariant() + "_" + Guid.NewGuid().ToString("N")[..8]).Replace('.', '_');
        await using (var admin = NpgsqlDataSource.Create(cs))
        await using (var cmd = admin.CreateCommand($"create schema \"{schema}\""))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var b = new NpgsqlConnectionStringBuilder(cs) { SearchPath = schema };
        await using (var ds = NpgsqlDataSource.Create(b.ConnectionString))
        {
            await Migrator.MigrateAsync(ds, through);
        }

        return b.ConnectionString;
    }

    public static async Task DropSchemaAsync(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        var schema = b.SearchPath!;
        b.SearchPath = null;
        await using var ds = NpgsqlDataSource.Create(b.ConnectionString);
        await using var cmd = ds.CreateCommand($"drop schema if exists \"{schema}\" cascade");
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>
/// One migrated schema shared by the tests of one class: xUnit creates this fixture before the class's
/// first test and disposes it after its last. Creating and migrating a schema costs more than most
/// tests in it, so one per test method made the suite pay it hundreds of times. A class's tests run one
/// after another, never together, so sharing needs only that each test use run ids of its own and
/// assert on its own runs; a test that needs an empty schema makes one with <see cref="CreateAsync"/>.
/// </summary>
public sealed class SchemaFixture : IAsyncLifetime, IAsyncDisposable
{
    private Task<(string ConnectionString, NpgsqlDataSource DataSource)>? _schema;

    /// <summary>A schema of its own, outside any class fixture (dispose it to drop it).</summary>
    public static async Task<SchemaFixture> CreateAsync(string prefix)
    {
        var own = new SchemaFixture();
        await own.OpenAsync(prefix);
        return own;
    }

    public string ConnectionString => Opened.ConnectionString;

    public NpgsqlDataSource DataSource => Opened.DataSource;

    private (string ConnectionString, NpgsqlDataSource DataSource) Opened =>
        _schema is { IsCompletedSuccessfully: true } s ? s.Result : throw new InvalidOperationException("the schema is used before OpenAsync");

    /// <summary>Creates the schema on first use, named after the test class so a leftover one says whose it is.</summary>
    public Task OpenAsync(string prefix) => _schema ??= CreateSchemaAsync(prefix);

    private static async Task<(string, NpgsqlDataSource)> CreateSchemaAsync(string prefix)
    {
        var cs = await TestDatabase.CreateSchemaAsync(prefix);
        return (cs, NpgsqlDataSource.Create(cs));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_schema is { IsCompletedSuccessfully: true })
        {
            await DataSource.DisposeAsync();
            await TestDatabase.DropSchemaAsync(ConnectionString);
        }
    }

    ValueTask IAsyncDisposable.DisposeAsync() => new(DisposeAsync());
}

/// <summary>Base of database test classes: one migrated schema per class (<see cref="SchemaFixture"/>), kept until its last test.</summary>
[Trait("Category", "Database")]
public abstract class DatabaseTest : IClassFixture<SchemaFixture>, IAsyncLifetime
{
    private readonly SchemaFixture _schema;
    private readonly bool _perTest;

    /// <summary>The class's schema: declare the test class as <c>X(SchemaFixture schema) : DatabaseTest(schema)</c>.</summary>
    protected DatabaseTest(SchemaFixture schema)
    {
        _schema = schema;
    }

    /// <summary>
    /// A schema per test, as before class fixtures: only so that a class written against the old base
    /// still builds and passes. Give it the fixture constructor (and run ids of its own per test) instead.
    /// </summary>
    protected DatabaseTest()
    {
        _schema = new SchemaFixture();
        _perTest = true;
    }

    protected string ConnectionString => _schema.ConnectionString;

    protected NpgsqlDataSource DataSource => _schema.DataSource;

    public Task InitializeAsync() => _schema.OpenAsync(GetType().Name);

    public Task DisposeAsync() => _perTest ? _schema.DisposeAsync() : Task.CompletedTask;

    protected EventStore Store(TimeProvider? clock = null) => new(DataSource, clock ?? TimeProvider.System);

    protected async Task<long> ScalarAsync(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        }

        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
