using System.Buffers;
using System.Text.Json;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>The production serializer: stored payloads (jsonb) and trace lines share one shape.</summary>
public static class EventSerializer
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = false, Indented = false };

    /// <summary>The payload object of an event (no "type" or "ts"), with any unknown fields kept verbatim after the known ones.</summary>
    /// <param name="steps">The run's writer step table: a decision's repeated steps are written as their ids (null: all inline).</param>
    public static byte[] SerializePayload(RunEvent e, IReadOnlyList<KeyValuePair<string, string>>? extras = null, StepTable? steps = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            EventRegistry.For(e).Write(w, e, steps);
            WriteExtras(w, extras);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>One NDJSON trace line from a stored event: type, ts, then the payload's fields in order.</summary>
    public static string ToTraceLine(string storedName, long? tsNs, ReadOnlySpan<byte> payload)
    {
        var type = EventRegistry.FindStoredName(storedName) ?? throw new InvalidOperationException($"unknown stored event '{storedName}'");
        var buffer = new ArrayBufferWriter<byte>(payload.Length + 64);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type", type.TraceName);
            if (tsNs is { } ts)
            {
                if (Timestamps.IsInteger(ts))
                {
                    w.WriteNumber("ts", ts);
                }
                else
                {
                    w.WriteString("ts", Timestamps.Format(ts));
                }
            }

            using var doc = JsonDocument.Parse(payload.ToArray());
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                p.WriteTo(w);
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <param name="hotPath">Try the one-pass decoder of the two commonest payloads first (HotPayloads); tests turn it off to compare.</param>
    /// <param name="steps">The run's reader step table, for payloads that name interned steps (StepMissingException when one is not in it).</param>
    public static RunEvent Deserialize(string storedName, int version, ReadOnlySpan<byte> payload, bool hotPath = true, StepTable? steps = null)
    {
        var type = EventRegistry.FindStoredName(storedName) ?? throw new InvalidOperationException($"unknown stored event '{storedName}'");
        if (hotPath && version == type.Version && HotPayloads.TryRead(storedName, payload, out var hot))
        {
            return hot!;
        }

        var json = Upcasters.Upcast(storedName, version, type.Version, payload);
        using var doc = JsonDocument.Parse(json);

        // Stored events were validated at ingestion; page size 1 turns off the alignment checks.
        return type.Read(new Fields(doc.RootElement, 1, steps));
    }

    /// <summary>
    /// The payload of an event stored as a compact record (ADR 0013) as PostgreSQL prints a jsonb payload
    /// (<c>payload::text</c>): keys shorter first, then by bytes; ", " and ": " between. An export or a replay
    /// then reads the same text from a version-2 row as from the version-1 row it replaced.
    /// </summary>
    public static string AsJsonbText(RunEvent e)
    {
        using var doc = JsonDocument.Parse(SerializePayload(e));
        var sb = new System.Text.StringBuilder(256);
        AppendJsonb(sb, doc.RootElement);
        return sb.ToString();
    }

    private static void AppendJsonb(System.Text.StringBuilder sb, JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                var first = true;
                foreach (var p in e.EnumerateObject().OrderBy(p => System.Text.Encoding.UTF8.GetByteCount(p.Name)).ThenBy(p => p.Name, StringComparer.Ordinal))
                {
                    sb.Append(first ? "" : ", ").Append(JsonSerializer.Serialize(p.Name)).Append(": ");
                    AppendJsonb(sb, p.Value);
                    first = false;
                }

                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    sb.Append(i++ == 0 ? "" : ", ");
                    AppendJsonb(sb, item);
                }

                sb.Append(']');
                break;
            default:
                sb.Append(e.GetRawText());
                break;
        }
    }

    /// <summary>The unknown fields a stored payload kept: those the canonical form of its event does not write.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> ExtrasOf(RunEvent e, string payload)
    {
        using var canonical = JsonDocument.Parse(SerializePayload(e));
        var known = canonical.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        using var stored = JsonDocument.Parse(payload);
        return stored.RootElement.EnumerateObject().Where(p => !known.Contains(p.Name)).Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetRawText())).ToList();
    }

    private static void WriteExtras(Utf8JsonWriter w, IReadOnlyList<KeyValuePair<string, string>>? extras)
    {
        if (extras is null)
        {
            return;
        }

        foreach (var (name, raw) in extras)
        {
            w.WritePropertyName(name);
            w.WriteRawValue(raw, skipInputValidation: true);
        }
    }
}

/// <summary>
/// Pure JSON upcasters from an older stored schema version to the current one, keyed by stored
/// name and source version. Every event is at version 1 today, so the table is empty; a change of
/// shape adds a version in the registry and a function here, tested with an old payload.
/// </summary>
public static class Upcasters
{
    private static readonly Dictionary<(string Name, int From), Func<byte[], byte[]>> Table = [];

    public static ReadOnlyMemory<byte> Upcast(string storedName, int version, int current, ReadOnlySpan<byte> payload)
    {
        var bytes = payload.ToArray();
        for (var v = version; v < current; v++)
        {
            if (!Table.TryGetValue((storedName, v), out var up))
            {
                throw new InvalidOperationException($"no upcaster for {storedName} v{v} -> v{v + 1}");
            }

            bytes = up(bytes);
        }

        if (version > current)
        {
            throw new InvalidOperationException($"{storedName} v{version} is newer than this build knows (v{current}); upgrade audit");
        }

        return bytes;
    }
}
