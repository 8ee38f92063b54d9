using System.Text.Json;
using Audit.Domain.Addresses;
using Audit.Domain;
using Audit.Domain.Events;
using K = Audit.Projections.Serialization.KernelNames;

namespace Audit.Projections.Serialization;

/// <summary>
/// A forward-only decoder for the two payloads that make up nearly every stored run (guest_faulted
/// and fault_resolved without its explanation), in one pass of a Utf8JsonReader instead of a
/// JsonDocument: a rebuild reads a million of each per million events. Anything it does not expect
/// (an explanation, an unknown field, a null where a value must be, a malformed value) makes it
/// decline, and the general codec, with its messages, decodes the payload instead.
/// </summary>
internal static class HotPayloads
{
    public static bool TryRead(string storedName, ReadOnlySpan<byte> payload, out RunEvent? e)
    {
        e = null;
        try
        {
            e = storedName switch
            {
                "guest_faulted" => ReadFault(payload),
                "fault_resolved" => ReadResolved(payload),
                _ => null,
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            e = null;
        }

        return e is not null;
    }

    private static GuestFaulted? ReadFault(ReadOnlySpan<byte> payload)
    {
        var r = new Utf8JsonReader(payload);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        int vcpu = 0;
        ulong? gpa = null, granule = null;
        Access? access = null;
        FaultKind kind = FaultKind.Translation;
        bool? priv = null, dirty = null;
        bool s1ptw = false, cm = false;
        while (Next(ref r, out var name))
        {
            switch (name)
            {
                case "vcpu": vcpu = r.GetInt32(); break;
                case "gpa": gpa = U64(ref r); break;
                case "access": access = Enum(ref r, K.Access.Read); break;
                case "kind": kind = Enum(ref r, K.FaultKind.Read) ?? kind; break;
                case "private": priv = r.GetBoolean(); break;
                case "s1ptw": s1ptw = r.GetBoolean(); break;
                case "cm": cm = r.GetBoolean(); break;
                case "granule": granule = U64(ref r); break;
                case "gpteDirty": dirty = r.GetBoolean(); break;
                default: return null;
            }
        }

        return gpa is { } g && access is { } a && r.TokenType == JsonTokenType.EndObject
            ? new GuestFaulted(vcpu, new Gpa(g), a, kind, priv, s1ptw, cm, granule, dirty)
            : null;
    }

    private static FaultResolved? ReadResolved(ReadOnlySpan<byte> payload)
    {
        var r = new Utf8JsonReader(payload);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        long? inputSeq = null;
        FaultOutcome? outcome = null;
        int? errno = null;
        Mapping? mapping = null;
        string? policy = null;
        while (Next(ref r, out var name))
        {
            switch (name)
            {
                case "inputSeq": inputSeq = r.GetInt64(); break;
                case "outcome": outcome = Enum(ref r, K.Outcome.Read); break;
                case "errno": errno = r.GetInt32(); break;
                case "policy": policy = r.GetString(); break;
                case "mapping":
                    mapping = ReadMapping(ref r);
                    if (mapping is null)
                    {
                        return null;
                    }

                    break;
                default: return null;
            }
        }

        return inputSeq is { } seq && outcome is { } o && errno is { } err && policy is not null && r.TokenType == JsonTokenType.EndObject
            ? new FaultResolved(seq, o, err, mapping, policy, new ValueList<ExplanationStep>([]))
            : null;
    }

    private static Mapping? ReadMapping(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        ulong? gpa = null, size = null;
        Stage2MemType? memType = null;
        bool? ipat = null;
        Perms? perms = null;
        while (Next(ref r, out var name))
        {
            switch (name)
            {
                case "gpa": gpa = U64(ref r); break;
                case "size": size = U64(ref r); break;
                case "memType": memType = Enum(ref r, K.Stage2MemType.Read); break;
                case "ipat": ipat = r.GetBoolean(); break;
                case "perms": perms = K.TryParsePerms(r.GetString()!, out var p) ? p : null; break;
                default: return null;
            }
        }

        return gpa is { } g && size is { } s && memType is { } m && perms is { } pm && r.TokenType == JsonTokenType.EndObject
            ? new Mapping(new Gpa(g), s, m, ipat, pm)
            : null;
    }

    /// <summary>Moves to the value of the next property that is not null; false at the end of the object.</summary>
    private static bool Next(ref Utf8JsonReader r, out string? name)
    {
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            name = r.GetString();
            r.Read();
            if (r.TokenType != JsonTokenType.Null)
            {
                return true;
            }
        }

        name = null;
        return false;
    }

    private static ulong? U64(ref Utf8JsonReader r) =>
        r.TokenType == JsonTokenType.Number ? r.GetUInt64()
        : r.TokenType == JsonTokenType.String && Hex.TryParse(r.GetString()!, out var v) ? v
        : throw new FormatException("not an unsigned integer");

    private static T? Enum<T>(ref Utf8JsonReader r, Dictionary<string, T> names)
        where T : struct =>
        r.TokenType == JsonTokenType.String && names.TryGetValue(r.GetString()!, out var v) ? v : throw new FormatException("not a known name");
}
