using Audit.Api.Features.Bench;

namespace Audit.Tests.Cli;

/// <summary>The host reads the report bench/Audit.Bench.Peers prints (ADR 0010): names and shape must agree.</summary>
public sealed class PeerReportTests
{
    // Printed by `AUDIT_PEER_DB=... dotnet .build/peers/Audit.Bench.Peers.dll --run pvm --schema s` on the demo's
    // pvm run (2026-12-04), shortened to two rows.
    private const string Printed = """
        {"events":484,"baseline":"raw COPY BINARY 0.1 s, raw ordered read 0.0 s","rows":[
        {"figure":"sessionAppend","marten":0.423,"ours":0.696,"oursVsMarten":1.65,"how":"x raw COPY; 484 events in 1,000-event sessions"},
        {"figure":"bytes","marten":3.86,"ours":3.38,"oursVsMarten":1.14,"how":"x raw table (lower is smaller)"}]}
        """;

    [Fact]
    public void The_report_the_peers_process_prints_is_read_with_every_figure()
    {
        var report = PeerProcess.Read(Printed);
        Assert.Equal(484, report.Events);
        Assert.Equal(2, report.Rows.Count);
        Assert.Equal(new PeerRow("sessionAppend", 0.423, 0.696, 1.65, "x raw COPY; 484 events in 1,000-event sessions"), report.Rows[0]);
        Assert.Equal(1.14, report.Rows[1].OursVsMarten);
    }

    [Fact]
    public void A_report_with_a_field_the_host_does_not_know_is_refused_rather_than_half_read()
    {
        var renamed = Printed.Replace("\"oursVsMarten\":1.65", "\"oursOverMarten\":1.65", StringComparison.Ordinal);
        Assert.Throws<System.Text.Json.JsonException>(() => PeerProcess.Read(renamed));
    }
}
