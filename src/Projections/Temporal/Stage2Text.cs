using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;

namespace Audit.Projections.Temporal;

/// <summary>
/// A stage-2 row's data as stored: the fields its row or its own other fields already say are left out
/// (ADR 0015). A fault's mapping opens its row at the seq that decided it, from the input just before,
/// so on most rows "lastChange", "inputSeq" and "lastChangeType" repeated from_seq, decidedAt - 1 and
/// what the row's kind implies: 69 of a mapped row's 182 characters. Reading puts them back, so every
/// reader sees the whole record whatever age the row is (rows written whole read as they are).
/// </summary>
public static class Stage2Text
{
    /// <summary>
    /// The data of a row opened at <paramref name="fromSeq"/>, without what the row implies, as an array of
    /// the fields that make its kind, then, when there is more, an object of the rest:
    /// a mapping [4096,"Normal",null,"rw-","arm64/6.17"], 37 characters where the object form took 101 (the
    /// builds of ADR 0016 began it with "mapped"), its "decidedAt" in the rest when it was decided before the
    /// row opened (a split or write-protected piece); a gap ["gap","unmapped",83908,"GuestFaulted","arm64.stage2_map_walk_leaf.break_block"],
    /// 81 where the object form took 143 (ADR 0017). Rows in the object form read as before.
    /// </summary>
    public static string Write(Stage2Data data, long fromSeq)
    {
        if (PlainMapping(data, fromSeq) is { } plain)
        {
            return plain;
        }

        var slim = data with
        {
            InputSeq = data.InputSeq == data.DecidedAt - 1 ? null : data.InputSeq,
            LastChange = data.LastChange == fromSeq ? 0 : data.LastChange,
            LastChangeType = data.LastChangeType == ImpliedChangeType(data) ? null : data.LastChangeType,
        };

        // A mapping without the seq that decided it has no compact form (the array's absent decidedAt means fromSeq),
        // nor has a gap with a mapping's fields (the projection makes none).
        var compact = slim.IsMapped ? slim.DecidedAt is not null : (slim.Granule, slim.MemType, slim.Ipat, slim.Perms, slim.Policy) == default;
        return compact ? WriteCompact(slim, fromSeq) : JsonSerializer.Serialize(slim, RunProjections.Json);
    }

    /// <summary>
    /// The commonest row, a mapping its fault opened and nothing changed since, as <see cref="WriteCompact"/> writes
    /// it ([4096,"Normal",null,"rw-","arm64/6.17"]) but without a JSON writer, a buffer and a copy of the data: a
    /// writer makes one per fault it maps. Null for any other row, or texts a JSON writer would escape.
    /// </summary>
    private static string? PlainMapping(Stage2Data d, long fromSeq)
    {
        if (!d.IsMapped || d.DecidedAt != fromSeq || (d.InputSeq is { } input && input != fromSeq - 1)
            || (d.LastChange != 0 && d.LastChange != fromSeq) || (d.LastChangeType is { } change && change != ImpliedChangeType(d))
            || d.WriteProtectedAt is not null || d.Outcome is not null || d.CauseSeq is not null || d.CauseType is not null
            || d.CauseRule is not null || d.WriteProtectRule is not null)
        {
            return null;
        }

        var memType = d.MemType?.ToString();
        var perms = d.Perms is { } p ? Fmt.Perms(p) : null;
        if (!Plain(memType) || !Plain(perms) || !Plain(d.Policy))
        {
            return null;
        }

        var text = new DefaultInterpolatedStringHandler(10, 5, System.Globalization.CultureInfo.InvariantCulture, stackalloc char[128]);
        text.AppendLiteral("[");
        if (d.Granule is { } g)
        {
            text.AppendFormatted(g);
        }
        else
        {
            text.AppendLiteral("null");
        }

        text.AppendLiteral(",");
        AppendQuoted(ref text, memType);
        text.AppendLiteral(d.Ipat switch { true => ",true,", false => ",false,", null => ",null," });
        AppendQuoted(ref text, perms);
        text.AppendLiteral(",");
        AppendQuoted(ref text, d.Policy);
        text.AppendLiteral("]");
        return text.ToStringAndClear();
    }

    /// <summary>Letters, digits and "/._-" only: what the JSON writer writes as it is, between quotes.</summary>
    private static bool Plain(string? text) =>
        text is null || text.AsSpan().IndexOfAnyExcept(PlainChars) < 0;

    private static readonly SearchValues<char> PlainChars = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-");

    private static void AppendQuoted(ref DefaultInterpolatedStringHandler text, string? value)
    {
        if (value is null)
        {
            text.AppendLiteral("null");
            return;
        }

        text.AppendLiteral("\"");
        text.AppendLiteral(value);
        text.AppendLiteral("\"");
    }

    /// <summary>The whole data of a row opened at <paramref name="fromSeq"/>, stored in any of its forms.</summary>
    public static Stage2Data Read(string json, long fromSeq)
    {
        var d = json.StartsWith('[') ? ReadCompact(json, fromSeq) : RunProjections.De<Stage2Data>(json);
        return d with
        {
            InputSeq = d.InputSeq ?? d.DecidedAt - 1,
            LastChange = d.LastChange == 0 ? fromSeq : d.LastChange,
            LastChangeType = d.LastChangeType ?? ImpliedChangeType(d),
        };
    }

    /// <summary>
    /// The kind fields of a row from the text the map groups rows by (TemporalQueries.MapAtAsync): a compact
    /// mapping's kind fields (with "mapped" before them in the form of ADR 0016), or the object form up to "decidedAt".
    /// </summary>
    public static Stage2Data ReadKind(string kindText) =>
        kindText.StartsWith('[')
            ? ReadCompact(kindText.EndsWith(']') ? kindText : kindText + "]", 0)
            : RunProjections.De<Stage2Data>(kindText.EndsWith('}') ? kindText : kindText + "}");

    /// <summary>What follows the kind in the compact form; the names and forms are the object form's.</summary>
    private sealed record Rest(
        long? DecidedAt,
        long? InputSeq,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] long LastChange,
        string? LastChangeType,
        [property: JsonConverter(typeof(RowJson.Seqs))] ValueList<long>? WriteProtectedAt,
        string? Outcome,
        long? CauseSeq,
        string? CauseType,
        string? CauseRule,
        string? WriteProtectRule)
    {
        [JsonIgnore]
        public bool IsEmpty => this == new Rest(null, null, 0, null, null, null, null, null, null, null);
    }

    private static string WriteCompact(Stage2Data d, long fromSeq)
    {
        var buffer = new ArrayBufferWriter<byte>(96);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            Rest rest;
            if (d.IsMapped)
            {
                WriteOrNull(w, d.Granule, (x, g) => x.WriteNumberValue(g));
                WriteOrNull(w, d.MemType, (x, t) => x.WriteStringValue(t.ToString()));
                WriteOrNull(w, d.Ipat, (x, i) => x.WriteBooleanValue(i));
                WriteOrNull(w, d.Perms, (x, p) => x.WriteStringValue(Fmt.Perms(p)));
                WriteOrNull(w, d.Policy);
                rest = new Rest(d.DecidedAt == fromSeq ? null : d.DecidedAt, d.InputSeq, d.LastChange, d.LastChangeType, d.WriteProtectedAt, d.Outcome, d.CauseSeq, d.CauseType, d.CauseRule, d.WriteProtectRule);
            }
            else
            {
                w.WriteStringValue("gap");
                WriteOrNull(w, d.Outcome);
                WriteOrNull(w, d.CauseSeq, (x, c) => x.WriteNumberValue(c));
                WriteOrNull(w, d.CauseType);
                WriteOrNull(w, d.CauseRule);
                rest = new Rest(d.DecidedAt, d.InputSeq, d.LastChange, d.LastChangeType, d.WriteProtectedAt, null, null, null, null, d.WriteProtectRule);
            }

            if (!rest.IsEmpty)
            {
                JsonSerializer.Serialize(w, rest, RunProjections.Json);
            }

            w.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteOrNull(Utf8JsonWriter w, string? value)
    {
        if (value is null)
        {
            w.WriteNullValue();
        }
        else
        {
            w.WriteStringValue(value);
        }
    }

    private static void WriteOrNull<T>(Utf8JsonWriter w, T? value, Action<Utf8JsonWriter, T> write)
        where T : struct
    {
        if (value is { } v)
        {
            write(w, v);
        }
        else
        {
            w.WriteNullValue();
        }
    }

    private static Stage2Data ReadCompact(string json, long fromSeq)
    {
        using var doc = JsonDocument.Parse(json);
        var a = doc.RootElement;
        static bool Has(JsonElement e) => e.ValueKind != JsonValueKind.Null;
        if (a[0].ValueKind == JsonValueKind.String && a[0].GetString() == "gap")
        {
            return ReadCompactGap(a);
        }

        // A mapping; the builds of ADR 0016 put "mapped" before its fields.
        var at = a[0].ValueKind == JsonValueKind.String ? 1 : 0;

        var perms = Perms.None;
        if (Has(a[at + 3]) && !KernelNames.TryParsePerms(a[at + 3].GetString() ?? "", out perms))
        {
            throw new JsonException($"a stage-2 row's permissions are three characters, e.g. \"rw-\": {a[at + 3]}");
        }

        var rest = a.GetArrayLength() > at + 5 ? a[at + 5].Deserialize<Rest>(RunProjections.Json) : null;
        return new Stage2Data(
            Stage2RowKind.Mapped,
            Has(a[at]) ? a[at].GetUInt64() : null,
            Has(a[at + 1]) ? Enum.Parse<Stage2MemType>(a[at + 1].GetString()!) : null,
            Has(a[at + 2]) ? a[at + 2].GetBoolean() : null,
            Has(a[at + 3]) ? perms : null,
            Has(a[at + 4]) ? a[at + 4].GetString() : null,
            rest?.DecidedAt ?? fromSeq,
            rest?.InputSeq,
            rest?.LastChange ?? 0,
            rest?.LastChangeType,
            rest?.WriteProtectedAt,
            rest?.Outcome,
            rest?.CauseSeq,
            rest?.CauseType,
            rest?.CauseRule,
            rest?.WriteProtectRule);
    }

    /// <summary>A compact gap: ["gap", outcome, causeSeq, causeType, causeRule(, rest)].</summary>
    private static Stage2Data ReadCompactGap(JsonElement a)
    {
        static bool Has(JsonElement e) => e.ValueKind != JsonValueKind.Null;
        var rest = a.GetArrayLength() > 5 ? a[5].Deserialize<Rest>(RunProjections.Json) : null;
        return new Stage2Data(
            Stage2RowKind.Gap,
            DecidedAt: rest?.DecidedAt,
            InputSeq: rest?.InputSeq,
            LastChange: rest?.LastChange ?? 0,
            LastChangeType: rest?.LastChangeType,
            WriteProtectedAt: rest?.WriteProtectedAt,
            Outcome: Has(a[1]) ? a[1].GetString() : null,
            CauseSeq: Has(a[2]) ? a[2].GetInt64() : null,
            CauseType: Has(a[3]) ? a[3].GetString() : null,
            CauseRule: Has(a[4]) ? a[4].GetString() : null,
            WriteProtectRule: rest?.WriteProtectRule);
    }

    /// <summary>
    /// The event that last changed a row, as its other fields imply it: a mapping was last changed by its
    /// fault unless it was write-protected since; a gap by the unmap that made it, or else by a refused fault.
    /// </summary>
    private static string ImpliedChangeType(Stage2Data d) =>
        d.IsMapped
            ? d.WriteProtectedAt is { Count: > 0 } ? "Stage2WriteProtected" : "FaultResolved"
            : d.Outcome == "unmapped" ? "Stage2Unmapped" : "FaultResolved";
}
