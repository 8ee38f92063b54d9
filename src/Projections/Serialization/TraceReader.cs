using System.Text;
using System.Text.Json;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>One event read from a trace: its line, time and the unknown fields kept for export.</summary>
public sealed record TraceEvent(int Line, long? TsNs, InputEvent Event, IReadOnlyList<KeyValuePair<string, string>> Extras);

/// <summary>The first problem in a file: where, and what a user should fix.</summary>
public sealed record TraceError(string File, int Line, string Reason)
{
    public override string ToString() => $"{File}:{Line}: {Reason}";
}

public sealed record TraceReadResult(IReadOnlyList<TraceEvent> Events, TraceError? Error);

/// <summary>Reads the native NDJSON trace format (events.md). Stops at the first bad line.</summary>
public static class NdjsonTraceReader
{
    public static TraceReadResult Read(string file, TextReader reader)
    {
        var events = new List<TraceEvent>();
        ulong pageSize = 4096;
        long? lastTs = null;
        var lastTsLine = 0;
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            var trimmed = line.AsSpan().Trim();
            if (trimmed.IsEmpty || trimmed[0] == '#')
            {
                continue;
            }

            TraceEvent parsed;
            try
            {
                parsed = ReadLine(lineNo, line, pageSize);
            }
            catch (FieldException ex)
            {
                return new(events, new TraceError(file, lineNo, ex.Message));
            }
            catch (JsonException ex)
            {
                return new(events, new TraceError(file, lineNo, "bad JSON: " + FirstSentence(ex.Message)));
            }

            if (parsed.TsNs is { } ts)
            {
                if (lastTs is { } prev && ts < prev)
                {
                    return new(events, new TraceError(file, lineNo, $"time goes backwards: ts {Timestamps.Format(ts)} is before {Timestamps.Format(prev)} at line {lastTsLine}"));
                }

                lastTs = ts;
                lastTsLine = lineNo;
            }

            if (parsed.Event is HostDescribed h)
            {
                pageSize = h.PageSize;
            }

            events.Add(parsed);
        }

        return new(events, null);
    }

    public static TraceReadResult Read(string file, Stream stream) => Read(file, new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true));

    private static TraceEvent ReadLine(int lineNo, string line, ulong pageSize)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FieldException($"expected a JSON object, got {Fields.Show(root)}");
        }

        if (!root.TryGetProperty("type", out var typeEl) || typeEl.ValueKind != JsonValueKind.String)
        {
            throw new FieldException("missing field 'type'");
        }

        // PostgreSQL's jsonb cannot hold a NUL character: refuse the line rather than fail the whole write.
        if (line.Contains("\\u0000", StringComparison.OrdinalIgnoreCase) && HoldsNul(root))
        {
            throw new FieldException("a string holds \\u0000 (NUL), which cannot be stored");
        }

        var typeName = typeEl.GetString()!;
        var type = EventRegistry.FindTraceName(typeName)
            ?? throw new FieldException($"unknown event type '{typeName}'");
        if (type.Derived)
        {
            throw new FieldException($"'{typeName}' is derived by the engine and cannot be written by clients");
        }

        long? ts = null;
        if (root.TryGetProperty("ts", out var tsEl) && tsEl.ValueKind != JsonValueKind.Null)
        {
            ts = tsEl.ValueKind switch
            {
                JsonValueKind.Number when tsEl.TryGetInt64(out var n) && n >= 0 => n,
                JsonValueKind.String when Timestamps.TryParse(tsEl.GetString()!, out var n) => n,
                _ => throw new FieldException($"field 'ts': {Fields.Show(tsEl)} is neither an RFC 3339 time nor integer nanoseconds"),
            };
        }

        var fields = new Fields(root, pageSize);
        var e = (InputEvent)type.Read(fields);
        return new TraceEvent(lineNo, ts, e, fields.Unknown());
    }

    private static bool HoldsNul(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString()!.Contains('\0', StringComparison.Ordinal),
        JsonValueKind.Object => e.EnumerateObject().Any(p => p.Name.Contains('\0', StringComparison.Ordinal) || HoldsNul(p.Value)),
        JsonValueKind.Array => e.EnumerateArray().Any(HoldsNul),
        _ => false,
    };

    private static string FirstSentence(string message)
    {
        var i = message.IndexOf(" Path:", StringComparison.Ordinal);
        return i > 0 ? message[..i] : message;
    }
}
