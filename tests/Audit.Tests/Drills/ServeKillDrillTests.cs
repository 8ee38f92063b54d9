using System.Net;
using System.Text;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Drills;

/// <summary>The real `serve` process killed under a client that retries, and writers racing for one version.</summary>
public sealed class ServeKillDrillTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static HttpRequestMessage Batch(string run, IEnumerable<string> lines, string? key = null, long? expected = null)
    {
        var url = $"/runs/{run}/events" + (expected is { } v ? $"?expectedVersion={v}" : "");
        var req = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(string.Join('\n', lines), Encoding.UTF8, "application/x-ndjson") };
        if (key is not null)
        {
            req.Headers.Add("Idempotency-Key", key);
        }

        return req;
    }

    [Fact]
    public async Task Killing_serve_while_a_client_retries_batches_with_idempotency_keys_stores_every_input_once_in_order()
    {
        var lines = HostProcess.TraceLines(faults: 1_500, seed: 3);
        var batches = lines.Chunk(60).ToList();
        using var server = new ServeProcess(["--db", ConnectionString]);
        await server.StartAsync();
        var rng = new Random(2103);
        var kills = 0;
        var retries = 0;
        for (var i = 0; i < batches.Count; i++)
        {
            while (true)
            {
                var send = server.Client.SendAsync(Batch("drill", batches[i], key: $"batch-{i}"));
                if (rng.Next(5) == 0)
                {
                    // Somewhere between receiving the body and answering: before, during or after the commit.
                    await Task.Delay(rng.Next(0, 60));
                    server.Kill();
                    kills++;
                }

                try
                {
                    using var r = await send;
                    if (r.StatusCode == HttpStatusCode.OK)
                    {
                        break;
                    }

                    Assert.Fail($"batch {i}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
                }
                catch (HttpRequestException)
                {
                    // The server died under this request: start it again and send the same batch with the same key.
                    retries++;
                    await server.StartAsync();
                }
            }
        }

        Assert.True(kills > 0 && retries > 0, $"{kills} kills, {retries} retries");
        var inputTypes = Audit.Projections.Serialization.EventRegistry.Types.Where(t => !t.Derived).Select(t => t.StoredName).ToArray();
        await using var cmd = DataSource.CreateCommand("select ts_ns from events where run_id = 'drill' and type::text = any($1) order by seq");
        cmd.Parameters.Add(new() { Value = inputTypes });
        var stored = new List<long>();
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                stored.Add(reader.GetInt64(0));
            }
        }

        var sent = lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("ts").GetString()!)
            .Select(t => Audit.Projections.Serialization.Timestamps.TryParse(t, out var ns) ? ns : -1).ToList();
        Assert.Equal(sent, stored);
        Assert.Equal(0, (await Audit.Tests.Cli.CliRunner.RunAsync(ConnectionString, "db", "check", "drill", "--samples", "5")).Exit);
    }

    [Fact]
    public async Task Of_two_writers_with_the_same_expected_version_exactly_one_wins()
    {
        var lines = HostProcess.TraceLines(faults: 40, seed: 4);
        using var server = new ServeProcess(["--db", ConnectionString]);
        await server.StartAsync();
        using (var first = await server.Client.SendAsync(Batch("race", lines.Take(6), expected: 0)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var faults = lines.Skip(6).ToList();
        for (var round = 0; round < 8; round++)
        {
            var version = await ScalarAsync("select version from runs where run_id = 'race'");
            var a = server.Client.SendAsync(Batch("race", [faults[round * 2]], expected: version));
            var b = server.Client.SendAsync(Batch("race", [faults[round * 2 + 1]], expected: version));
            var codes = (await Task.WhenAll(a, b)).Select(r => r.StatusCode).Order().ToList();
            Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Conflict], codes);
        }

        Assert.Equal(6 + 8, await ScalarAsync("select input_count from runs where run_id = 'race'"));
        Assert.Equal(0, (await Audit.Tests.Cli.CliRunner.RunAsync(ConnectionString, "db", "check", "race")).Exit);
    }

    [Fact]
    public async Task Serve_on_a_port_in_use_exits_2_in_one_line_without_a_stack_trace()
    {
        using var held = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        held.Start();
        var port = ((System.Net.IPEndPoint)held.LocalEndpoint).Port;
        var r = await HostProcess.RunAsync(["serve", "--urls", $"http://127.0.0.1:{port}", "--db", ConnectionString]);
        Assert.Equal(2, r.Exit);
        Assert.Contains("cannot listen on", r.Err, StringComparison.Ordinal);
        Assert.Equal("", HostProcess.NoStackTrace(r));
        Assert.DoesNotContain("   at ", r.Out, StringComparison.Ordinal);
    }
}
