using System.Globalization;

namespace Audit.Domain.Addresses;

/// <summary>A guest physical address (arm64: IPA). Any 64-bit value; printed in hex.</summary>
public readonly record struct Gpa(ulong Value) : IComparable<Gpa>
{
    public const int PageShift = 12;

    public ulong Gfn => Value >> PageShift;

    public Gpa AlignDown(ulong size) => new(Value & ~(size - 1));

    public bool IsAligned(ulong size) => (Value & (size - 1)) == 0;

    public int CompareTo(Gpa other) => Value.CompareTo(other.Value);

    public static Gpa operator +(Gpa a, ulong offset) => new(a.Value + offset);

    public static bool operator <(Gpa a, Gpa b) => a.Value < b.Value;
    public static bool operator >(Gpa a, Gpa b) => a.Value > b.Value;
    public static bool operator <=(Gpa a, Gpa b) => a.Value <= b.Value;
    public static bool operator >=(Gpa a, Gpa b) => a.Value >= b.Value;

    public override string ToString() => Hex.Format(Value);
}

/// <summary>A host virtual address in the VMM process. Printed in hex.</summary>
public readonly record struct Hva(ulong Value) : IComparable<Hva>
{
    public bool IsAligned(ulong size) => (Value & (size - 1)) == 0;

    public int CompareTo(Hva other) => Value.CompareTo(other.Value);

    public static Hva operator +(Hva a, ulong offset) => new(a.Value + offset);

    public static bool operator <(Hva a, Hva b) => a.Value < b.Value;
    public static bool operator >(Hva a, Hva b) => a.Value > b.Value;
    public static bool operator <=(Hva a, Hva b) => a.Value <= b.Value;
    public static bool operator >=(Hva a, Hva b) => a.Value >= b.Value;

    public override string ToString() => Hex.Format(Value);
}

public static class Hex
{
    /// <summary>"0x" and lowercase hex digits, without leading zeros.</summary>
    public static string Format(ulong value)
    {
        var digits = Math.Max(1, (64 - System.Numerics.BitOperations.LeadingZeroCount(value) + 3) / 4);
        return string.Create(digits + 2, value, static (span, v) =>
        {
            span[0] = '0';
            span[1] = 'x';
            for (var i = span.Length - 1; i >= 2; i--)
            {
                span[i] = "0123456789abcdef"[(int)(v & 0xf)];
                v >>= 4;
            }
        });
    }

    /// <summary>Parses "0x..." hex or plain decimal; false on anything else or overflow.</summary>
    public static bool TryParse(string text, out ulong value)
    {
        var s = text.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && s.Length > 2;
        }

        return ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
