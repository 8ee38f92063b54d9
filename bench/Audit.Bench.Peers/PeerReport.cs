using System.Text.Json;

namespace Audit.Bench.Peers;

/// <summary>
/// What the peer process prints: one row per operation, each store's time as a ratio to raw PostgreSQL
/// on the same rows (higher is faster; for bytes, lower is smaller), and the two stores head to head
/// (Marten's time over ours: above 1 ours is faster or smaller), which a shared machine disturbs less
/// than a floor timed minutes apart. The host reads it by these names.
/// </summary>
internal sealed record PeerReport(long Events, string Baseline, IReadOnlyList<PeerRow> Rows)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}

internal sealed record PeerRow(string Figure, double Marten, double Ours, double OursVsMarten, string How);
