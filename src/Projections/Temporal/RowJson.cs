using System.Text.Json;
using System.Text.Json.Serialization;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Projections.Temporal;

/// <summary>
/// How typed projection row fields read and write their stored JSON: the texts every row stored before
/// the fields were typed ("rwx", "VM_SHARED|VM_PFNMAP", "0x7f0000000000", "hugetlb"), so rows of any age
/// read back, and the web map's SQL, which groups rows by their data text, sees the same text.
/// </summary>
internal static class RowJson
{
    /// <summary>Permissions as "rwx" / "r--".</summary>
    public sealed class PermsText : JsonConverter<Perms>
    {
        public override Perms Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Serialization.KernelNames.TryParsePerms(reader.GetString() ?? "", out var perms)
                ? perms
                : throw new JsonException("permissions are three characters, e.g. \"rw-\"");

        public override void Write(Utf8JsonWriter writer, Perms value, JsonSerializerOptions options) => writer.WriteStringValue(Fmt.Perms(value));
    }

    /// <summary>Flags as the kernel's names joined with '|' ("none" for no flag).</summary>
    public sealed class FlagsText<T> : JsonConverter<T>
        where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var text = reader.GetString() ?? "";
            ulong bits = 0;
            foreach (var name in text.Split('|', StringSplitOptions.RemoveEmptyEntries))
            {
                if (name != "none")
                {
                    bits |= Convert.ToUInt64(Enum.Parse<T>(name), System.Globalization.CultureInfo.InvariantCulture);
                }
            }

            return (T)Enum.ToObject(typeof(T), bits);
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Fmt.Flags(value));
    }

    /// <summary>An enum by its lower-case name ("anon", "hugetlb", "guestmemfd").</summary>
    public sealed class LowerName<T> : JsonConverter<T>
        where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Enum.Parse<T>(reader.GetString() ?? "", ignoreCase: true);

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString().ToLowerInvariant());
    }

    /// <summary>An address or size as canonical hex ("0x7f0000000000").</summary>
    public sealed class HexText : JsonConverter<ulong>
    {
        public override ulong Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Hex.TryParse(reader.GetString() ?? "", out var v) ? v : throw new JsonException("expected a hex address");

        public override void Write(Utf8JsonWriter writer, ulong value, JsonSerializerOptions options) => writer.WriteStringValue(Hex.Format(value));
    }

    /// <summary>Seqs as a JSON array; rows stored before read their comma-separated text ("12,15").</summary>
    public sealed class Seqs : JsonConverter<ValueList<long>>
    {
        public override ValueList<long> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.String)
            {
                return new((reader.GetString() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => long.Parse(s, System.Globalization.CultureInfo.InvariantCulture)));
            }

            var seqs = new List<long>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                seqs.Add(reader.GetInt64());
            }

            return new(seqs);
        }

        public override void Write(Utf8JsonWriter writer, ValueList<long> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            foreach (var seq in value)
            {
                writer.WriteNumberValue(seq);
            }

            writer.WriteEndArray();
        }
    }
}
