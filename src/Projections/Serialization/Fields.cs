using System.Globalization;
using System.Text.Json;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>A field-level problem in an event object; the trace reader adds file and line.</summary>
public sealed class FieldException(string message) : Exception(message);

/// <summary>
/// Typed, strict access to the properties of one JSON event object. Remembers which
/// properties were read so that the rest can be kept verbatim as unknown fields.
/// </summary>
internal sealed class Fields
{
    private readonly JsonElement _obj;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal) { "type", "ts" };

    public Fields(JsonElement obj, ulong pageSize, StepTable? steps = null)
    {
        _obj = obj;
        PageSize = pageSize;
        Steps = steps;
    }

    /// <summary>The run's interned explanation steps, for a stored payload that names them by id (none in a trace).</summary>
    public StepTable? Steps { get; }

    /// <summary>Host page size used for alignment checks (from HostDescribed, default 4 KiB).</summary>
    public ulong PageSize { get; }

    public IReadOnlyList<KeyValuePair<string, string>> Unknown()
    {
        List<KeyValuePair<string, string>>? extra = null;
        foreach (var p in _obj.EnumerateObject())
        {
            if (!_used.Contains(p.Name))
            {
                (extra ??= []).Add(new(p.Name, p.Value.GetRawText()));
            }
        }

        return extra ?? (IReadOnlyList<KeyValuePair<string, string>>)[];
    }

    private bool TryGet(string name, out JsonElement value)
    {
        _used.Add(name);
        if (_obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
        {
            return true;
        }

        value = default;
        return false;
    }

    private JsonElement Need(string name)
    {
        if (!TryGet(name, out var v))
        {
            throw new FieldException($"missing field '{name}'");
        }

        return v;
    }

    public ulong U64(string name) => ToU64(name, Need(name));

    public ulong? OptU64(string name) => TryGet(name, out var v) ? ToU64(name, v) : null;

    public int Int(string name) => ToInt(name, Need(name));

    public int? OptInt(string name) => TryGet(name, out var v) ? ToInt(name, v) : null;

    public Gpa Gpa(string name) => new(U64(name));

    public Hva Hva(string name) => new(U64(name));

    public string Str(string name)
    {
        var v = Need(name);
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new FieldException($"field '{name}': expected a string, got {Show(v)}");
    }

    public string? OptStr(string name)
    {
        if (!TryGet(name, out var v))
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new FieldException($"field '{name}': expected a string, got {Show(v)}");
    }

    public bool Bool(string name) => OptBool(name) ?? throw new FieldException($"missing field '{name}'");

    public bool? OptBool(string name)
    {
        if (!TryGet(name, out var v))
        {
            return null;
        }

        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FieldException($"field '{name}': expected true or false, got {Show(v)}"),
        };
    }

    public Fields Obj(string name)
    {
        var v = Need(name);
        return v.ValueKind == JsonValueKind.Object ? new Fields(v, PageSize, Steps) : throw new FieldException($"field '{name}': expected an object, got {Show(v)}");
    }

    public Fields? OptObj(string name)
    {
        if (!TryGet(name, out var v))
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.Object ? new Fields(v, PageSize, Steps) : throw new FieldException($"field '{name}': expected an object, got {Show(v)}");
    }

    public IEnumerable<(string Name, JsonElement Value)> Properties()
    {
        foreach (var p in _obj.EnumerateObject())
        {
            _used.Add(p.Name);
            yield return (p.Name, p.Value);
        }
    }

    /// <summary>An enum spelled with one of the given names (case-insensitive).</summary>
    public T Enum<T>(string name, IReadOnlyDictionary<string, T> names) => ToEnum(name, Need(name), names);

    public T? OptEnum<T>(string name, IReadOnlyDictionary<string, T> names)
        where T : struct => TryGet(name, out var v) ? ToEnum(name, v, names) : null;

    /// <summary>An array of flag names, or absent for none. Unknown names are an error that lists the known ones.</summary>
    public T Flags<T>(string name, IReadOnlyDictionary<string, T> names)
        where T : struct, System.Enum
    {
        if (!TryGet(name, out var v))
        {
            return default;
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            throw new FieldException($"field '{name}': expected an array of flag names, got {Show(v)}");
        }

        ulong bits = 0;
        foreach (var item in v.EnumerateArray())
        {
            bits |= Convert.ToUInt64(ToEnum(name, item, names), CultureInfo.InvariantCulture);
        }

        return (T)System.Enum.ToObject(typeof(T), bits);
    }

    /// <summary>An errno as a number (either sign) or a name ("EINVAL", "-EINVAL"); stored positive.</summary>
    public int? OptErrno(string name)
    {
        if (!TryGet(name, out var v))
        {
            return null;
        }

        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n))
        {
            return Math.Abs(n);
        }

        if (v.ValueKind == JsonValueKind.String && Errno.TryParse(v.GetString()!, out var e))
        {
            return e;
        }

        throw new FieldException($"field '{name}': expected an errno (0, -22 or \"EINVAL\"), got {Show(v)}");
    }

    /// <summary>A page-aligned, non-empty host range from start and length.</summary>
    public HvaRange PageRange(string startName = "start", string lengthName = "length")
    {
        var start = U64(startName);
        var length = U64(lengthName);
        RequireAligned(startName, start);
        RequireAligned(lengthName, length);
        if (length == 0)
        {
            throw new FieldException($"field '{lengthName}': length is 0");
        }

        if (start + length < start)
        {
            throw new FieldException($"range {Hex.Format(start)} + {Hex.Format(length)} overflows 64 bits");
        }

        return HvaRange.FromSize(new Hva(start), length);
    }

    public void RequireAligned(string name, ulong value, ulong? to = null)
    {
        var align = to ?? PageSize;
        if ((value & (align - 1)) != 0)
        {
            throw new FieldException($"unaligned address: field '{name}' {Hex.Format(value)} is not aligned to {Hex.Format(align)}");
        }
    }

    private static ulong ToU64(string name, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out var n))
        {
            return n;
        }

        if (v.ValueKind == JsonValueKind.String && Hex.TryParse(v.GetString()!, out var s))
        {
            return s;
        }

        throw new FieldException($"field '{name}': expected an unsigned integer or a hex string like \"0x1000\", got {Show(v)}");
    }

    private static int ToInt(string name, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n))
        {
            return n;
        }

        if (v.ValueKind == JsonValueKind.String && Hex.TryParse(v.GetString()!, out var s) && s <= int.MaxValue)
        {
            return (int)s;
        }

        throw new FieldException($"field '{name}': expected an integer, got {Show(v)}");
    }

    private static T ToEnum<T>(string name, JsonElement v, IReadOnlyDictionary<string, T> names)
    {
        if (v.ValueKind == JsonValueKind.String && names.TryGetValue(v.GetString()!, out var value))
        {
            return value;
        }

        throw new FieldException($"field '{name}': {Show(v)} is not one of {string.Join(", ", names.Keys)}");
    }

    internal static string Show(JsonElement v)
    {
        var raw = v.GetRawText();
        return raw.Length > 40 ? raw[..40] + "..." : raw;
    }
}

internal static class FieldsExtensions
{
    public static long U64Long(this Fields f, string name) => checked((long)f.U64(name));
}
