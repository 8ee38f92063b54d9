namespace Audit.Projections.Serialization;

/// <summary>Unsigned LEB128 varints, signed ones zigzagged: the integers of the fold form and of compact records.</summary>
internal static class Varint
{
    public static int Put(Span<byte> to, ulong v)
    {
        var n = 0;
        while (v >= 0x80)
        {
            to[n++] = (byte)(v | 0x80);
            v >>= 7;
        }

        to[n++] = (byte)v;
        return n;
    }

    public static ulong ZigZag(long v) => (ulong)((v << 1) ^ (v >> 63));

    public static int PutSigned(Span<byte> to, long v) => Put(to, ZigZag(v));

    public static ulong Get(ReadOnlySpan<byte> from, ref int n)
    {
        ulong v = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = from[n++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return v;
            }
        }

        throw new InvalidDataException("stored varint too long");
    }

    public static long GetSigned(ReadOnlySpan<byte> from, ref int n)
    {
        var u = Get(from, ref n);
        return (long)(u >> 1) ^ -(long)(u & 1);
    }
}
