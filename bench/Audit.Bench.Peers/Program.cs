using System.Diagnostics;
using System.Text.Json;
using Audit.Bench.Peers;
using Audit.Projections.Storage;
using Npgsql;

// `./audit bench --peers` runs this process after its own suite: it reads the run the suite stored
// (AUDIT_PEER_DB points at the suite's schema), then measures Marten and our store on those events in a
// schema of its own, each against raw PostgreSQL on the same rows, and prints the figures as JSON.
if (args.Length != 4 || args[0] != "--run" || args[2] != "--schema")
{
    Console.Error.WriteLine("usage: AUDIT_PEER_DB=CONNECTION Audit.Bench.Peers --run RUN --schema NEW_SCHEMA");
    return 2;
}

var source = Environment.GetEnvironmentVariable("AUDIT_PEER_DB");
if (string.IsNullOrEmpty(source))
{
    Console.Error.WriteLine("peers: AUDIT_PEER_DB (a connection string whose search path is the bench schema) is not set");
    return 2;
}

var (run, schema) = (args[1], args[3]);
var ct = CancellationToken.None;
var events = await PeerBench.LoadAsync(source, run, ct);
await Baselines.CreateSchemaAsync(source, schema, ct);
try
{
    var cs = new NpgsqlConnectionStringBuilder(source) { SearchPath = schema, MaxPoolSize = 40 }.ConnectionString;
    await using var ds = NpgsqlDataSource.Create(cs);
    await using var marten = new MartenPeer(cs, schema);
    await using var ours = new OurPeer(ds);
    var report = await new PeerBench(ds, [marten, ours], m => Console.Error.WriteLine("peers: " + m)).RunAsync(events, ct);
    Console.WriteLine(JsonSerializer.Serialize(report, PeerReport.Json));
    return 0;
}
catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
{
    Console.Error.WriteLine("peers: " + ex.Message);
    Debug.WriteLine(ex);
    return 3;
}
finally
{
    await Baselines.DropSchemaAsync(source, schema, CancellationToken.None);
}
