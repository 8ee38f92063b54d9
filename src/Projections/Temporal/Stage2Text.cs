using System.Buffers;
using System.Runtime.CompilerServices;
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

    /// <summary>Letters, digits and "/._-" only: what the JSON writer writes as it is, between quotes.</summary>
    private static bool Plain(string text) => text.AsSpan().IndexOfAnyExcept(PlainChars) < 0;

    private static readonly SearchValues<char> PlainChars = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-");

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

    /// <summary>
    /// The compact form, written by hand as a JSON writer writes it: a row is written per fault mapped, and a
    /// writer, its buffer and their copy of the text were most of what writing one allocated.
    /// </summary>
    private static string WriteCompact(Stage2Data d, long fromSeq)
    {
        var text = new DefaultInterpolatedStringHandler(16, 8, System.Globalization.CultureInfo.InvariantCulture, stackalloc char[160]);
        text.AppendLiteral("[");
        Rest rest;
        if (d.IsMapped)
        {
            AppendNumber(ref text, d.Granule);
            AppendString(ref text, d.MemType?.ToString(), comma: true);
            text.AppendLiteral(d.Ipat switch { true => ",true", false => ",false", null => ",null" });
            AppendString(ref text, d.Perms is { } p ? Fmt.Perms(p) : null, comma: true);
            AppendString(ref text, d.Policy, comma: true);
            rest = new Rest(d.DecidedAt == fromSeq ? null : d.DecidedAt, d.InputSeq, d.LastChange, d.LastChangeType, d.WriteProtectedAt, d.Outcome, d.CauseSeq, d.CauseType, d.CauseRule, d.WriteProtectRule);
        }
        else
        {
            text.AppendLiteral("\"gap\"");
            AppendString(ref text, d.Outcome, comma: true);
            text.AppendLiteral(",");
            AppendNumber(ref text, d.CauseSeq);
            AppendString(ref text, d.CauseType, comma: true);
            AppendString(ref text, d.CauseRule, comma: true);
            rest = new Rest(d.DecidedAt, d.InputSeq, d.LastChange, d.LastChangeType, d.WriteProtectedAt, null, null, null, null, d.WriteProtectRule);
        }

        if (!rest.IsEmpty)
        {
            text.AppendLiteral(",");
            text.AppendLiteral(JsonSerializer.Serialize(rest, RunProjections.Json));
        }

        text.AppendLiteral("]");
        return text.ToStringAndClear();
    }

    private static void AppendNumber<T>(ref DefaultInterpolatedStringHandler text, T? value)
        where T : struct, ISpanFormattable
    {
        if (value is { } v)
        {
            text.AppendFormatted(v);
        }
        else
        {
            text.AppendLiteral("null");
        }
    }

    /// <summary>A JSON string as the JSON writer's default encoder writes it: as it is when nothing in it needs escaping.</summary>
    private static void AppendString(ref DefaultInterpolatedStringHandler text, string? value, bool comma)
    {
        if (comma)
        {
            text.AppendLiteral(",");
        }

        if (value is null)
        {
            text.AppendLiteral("null");
            return;
        }

        text.AppendLiteral("\"");
        text.AppendLiteral(Plain(value) ? value : JsonEncodedText.Encode(value).Value);
        text.AppendLiteral("\"");
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
