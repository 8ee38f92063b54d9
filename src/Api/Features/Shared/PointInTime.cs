using System.Globalization;
using Audit.Domain.Addresses;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;

namespace Audit.Api.Features.Shared;

/// <summary>Parsing of the shared query arguments: a gpa, and --at as a seq or an RFC 3339 time.</summary>
public static class PointInTime
{
    public static bool TryParseGpa(string? text, out Gpa gpa)
    {
        gpa = default;
        if (text is null || !Hex.TryParse(text, out var v))
        {
            return false;
        }

        gpa = new Gpa(v);
        return true;
    }

    /// <summary>The seq an --at names: itself, or the last event at or before a time; null and an error when it is neither.</summary>
    public static async Task<(long? Seq, string? Error)> ResolveAsync(EventStore store, string run, string? at, long lastSeq, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(at))
        {
            return (lastSeq, null);
        }

        if (long.TryParse(at, NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
        {
            return (Math.Min(seq, lastSeq), null);
        }

        if (Timestamps.TryParse(at, out var ns))
        {
            return (await store.LastSeqAtOrBeforeAsync(run, ns, ct), null);
        }

        return (null, $"--at '{at}' is neither a sequence number nor an RFC 3339 time (e.g. 2026-03-02T10:00:00.012Z)");
    }
}
