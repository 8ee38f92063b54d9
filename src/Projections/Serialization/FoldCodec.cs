using System.Text;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>
/// The compact binary form a rebuild reads instead of the jsonb payload (ADR 0007), stored in
/// <c>events.fold</c> for the two events that make up nearly every run: guest_faulted whole, and
/// fault_resolved without its explanation (the only part no fold reads). Other events store null
/// and are read from their payload. The payload stays the record: this column is derived from the
/// same event at the same append and can be dropped and rewritten from it.
/// </summary>
/// <remarks>
/// Layout: format byte (<see cref="Format"/>), tag byte (1 guest_faulted, 2 fault_resolved), then
/// the fields as unsigned LEB128 varints (signed ones zigzagged), enums and flags as single bytes,
/// the policy as a varint length and UTF-8. A reader that meets another format byte reads the payload.
/// </remarks>
public static class FoldCodec
{
    public const byte Format = 1;

    private const byte FaultTag = 1;
    private const byte ResolvedTag = 2;

    /// <summary>The fold form of an event, or null when the event has none (read from its payload).</summary>
    public static byte[]? Encode(RunEvent e)
    {
        switch (e)
        {
            case GuestFaulted f:
            {
                Span<byte> buf = stackalloc byte[40];
                var n = 0;
                buf[n++] = Format;
                buf[n++] = FaultTag;
                n += Varint.PutSigned(buf[n..], f.Vcpu);
                n += Varint.Put(buf[n..], f.Gpa.Value);
                buf[n++] = (byte)f.Access;
                buf[n++] = (byte)f.Kind;
                var flags = (f.Private is { } p ? 1 | (p ? 2 : 0) : 0) | (f.S1ptw ? 4 : 0) | (f.Cm ? 8 : 0)
                    | (f.Granule is not null ? 16 : 0) | (f.GuestPteDirty is { } d ? 32 | (d ? 64 : 0) : 0);
                buf[n++] = (byte)flags;
                if (f.Granule is { } g)
                {
                    n += Varint.Put(buf[n..], g);
                }

                return buf[..n].ToArray();
            }

            case FaultResolved r:
            {
                var policy = Encoding.UTF8.GetByteCount(r.Policy);
                var most = 2 + 10 + 1 + 5 + 1 + 10 + 10 + 2 + 5 + policy;
                Span<byte> buf = most <= 256 ? stackalloc byte[256] : new byte[most];
                var n = 0;
                buf[n++] = Format;
                buf[n++] = ResolvedTag;
                n += Varint.PutSigned(buf[n..], r.InputSeq);
                buf[n++] = (byte)r.Outcome;
                n += Varint.PutSigned(buf[n..], r.Errno);
                var m = r.Mapping;
                buf[n++] = (byte)(m is null ? 0 : 1 | (m.Ipat is { } i ? 2 | (i ? 4 : 0) : 0));
                if (m is not null)
                {
                    n += Varint.Put(buf[n..], m.Gpa.Value);
                    n += Varint.Put(buf[n..], m.Size);
                    buf[n++] = (byte)m.MemType;
                    buf[n++] = (byte)m.Perms;
                }

                n += Varint.Put(buf[n..], (ulong)policy);
                n += Encoding.UTF8.GetBytes(r.Policy, buf[n..]);
                return buf[..n].ToArray();
            }

            default:
                return null;
        }
    }

    /// <summary>Whether a stored fold value is in a form this build reads: a fold value, or a compact record (ADR 0013).</summary>
    public static bool Readable(ReadOnlySpan<byte> fold) => fold.Length >= 2 && fold[0] is Format or CompactRecord.Format;

    /// <summary>A decoder for one read: it keeps the last policy string, which nearly every decision of a run repeats.</summary>
    public sealed class Reader
    {
        private readonly PolicyCache _policies = new();

        /// <summary>The event of a fold value, or of a compact record (ADR 0013) without its explanation: that needs the event's seq.</summary>
        public RunEvent Decode(ReadOnlySpan<byte> fold, long seq) =>
            fold[0] == CompactRecord.Format ? CompactRecord.Decode(fold, seq, null, _policies) : Decode(fold);

        public RunEvent Decode(ReadOnlySpan<byte> fold)
        {
            if (fold.Length < 2 || fold[0] != Format)
            {
                throw new InvalidDataException("not a fold value of format " + Format);
            }

            var n = 2;
            switch (fold[1])
            {
                case FaultTag:
                {
                    var vcpu = checked((int)Varint.GetSigned(fold, ref n));
                    var gpa = Varint.Get(fold, ref n);
                    var access = Enum<Access>(fold[n++]);
                    var kind = Enum<FaultKind>(fold[n++]);
                    int flags = fold[n++];
                    ulong? granule = (flags & 16) != 0 ? Varint.Get(fold, ref n) : null;
                    End(fold, n);
                    return new GuestFaulted(
                        vcpu, new Gpa(gpa), access, kind,
                        (flags & 1) != 0 ? (flags & 2) != 0 : null,
                        (flags & 4) != 0,
                        (flags & 8) != 0,
                        granule,
                        (flags & 32) != 0 ? (flags & 64) != 0 : null);
                }

                case ResolvedTag:
                {
                    var input = Varint.GetSigned(fold, ref n);
                    var outcome = Enum<FaultOutcome>(fold[n++]);
                    var errno = checked((int)Varint.GetSigned(fold, ref n));
                    int flags = fold[n++];
                    Mapping? mapping = null;
                    if ((flags & 1) != 0)
                    {
                        var gpa = Varint.Get(fold, ref n);
                        var size = Varint.Get(fold, ref n);
                        var memType = Enum<Stage2MemType>(fold[n++]);
                        var perms = fold[n++];
                        if (perms > 7)
                        {
                            throw new InvalidDataException("fold value: perms out of range");
                        }

                        mapping = new Mapping(new Gpa(gpa), size, memType, (flags & 2) != 0 ? (flags & 4) != 0 : null, (Perms)perms);
                    }

                    var length = checked((int)Varint.Get(fold, ref n));
                    var policy = _policies.Get(fold.Slice(n, length));
                    End(fold, n + length);
                    return new FaultResolved(input, outcome, errno, mapping, policy, ValueList<ExplanationStep>.Empty);
                }

                default:
                    throw new InvalidDataException($"fold value: unknown tag {fold[1]}");
            }
        }
    }

    private static T Enum<T>(byte value)
        where T : struct, System.Enum
    {
        if (value >= EnumCount<T>.Value)
        {
            throw new InvalidDataException($"fold value: {typeof(T).Name} {value} out of range");
        }

        int v = value;
        return System.Runtime.CompilerServices.Unsafe.As<int, T>(ref v);
    }

    /// <summary>The enums read here number their members 0..n-1.</summary>
    private static class EnumCount<T>
        where T : struct, System.Enum
    {
        public static readonly int Value = System.Enum.GetValues<T>().Length;
    }

    private static void End(ReadOnlySpan<byte> fold, int n)
    {
        if (n != fold.Length)
        {
            throw new InvalidDataException($"fold value: {fold.Length - n} bytes left over");
        }
    }
}
