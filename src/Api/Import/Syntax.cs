using System.Globalization;

namespace Audit.Api.Import;

/// <summary>Small text helpers shared by the importers.</summary>
internal static class Syntax
{
    /// <summary>Splits a syscall argument list at top-level commas (not inside {}, [], () or quotes).</summary>
    public static List<string> SplitArgs(string s)
    {
        var parts = new List<string>();
        var depth = 0;
        var quoted = false;
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '"' && (i == 0 || s[i - 1] != '\\'))
            {
                quoted = !quoted;
            }
            else if (!quoted && c is '{' or '[' or '(')
            {
                depth++;
            }
            else if (!quoted && c is '}' or ']' or ')')
            {
                depth--;
            }
            else if (!quoted && depth == 0 && c == ',')
            {
                parts.Add(s[start..i].Trim());
                start = i + 1;
            }
        }

        if (start < s.Length)
        {
            parts.Add(s[start..].Trim());
        }

        return parts;
    }

    /// <summary>0x-hex, octal-free decimal, or NULL; false otherwise.</summary>
    public static bool TryNumber(string s, out ulong value)
    {
        s = s.Trim();
        if (s == "NULL")
        {
            value = 0;
            return true;
        }

        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }

        if (s.StartsWith('-') && long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var neg))
        {
            value = unchecked((ulong)neg);
            return true;
        }

        return ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    public static ulong Number(string s, string what) =>
        TryNumber(s, out var v) ? v : throw new FormatException($"{what}: '{s}' is not a number");

    /// <summary>The fields of a strace struct "{a=1, b=0x2}" by name.</summary>
    public static Dictionary<string, string> Struct(string s)
    {
        var body = s.Trim().TrimStart('{').TrimEnd('}');
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in SplitArgs(body))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                fields[part[..eq].Trim()] = part[(eq + 1)..].Trim();
            }
        }

        return fields;
    }

    public static ulong PageUp(ulong v) => (v + 0xfff) & ~0xfffUL;
}
