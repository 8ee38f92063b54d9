using System.Buffers;
using Audit.Domain;
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
/// The fields are those of a compact record (<see cref="CompactRecord"/>, whose field codecs this
/// shares; the enums' record codes are the ordinals this format was written with): since ADR 0013 the
/// append writes a compact record here instead, and this form is read from rows stored before it.
/// </remarks>
public static class FoldCodec
{
    public const byte Format = 1;

    private const byte FaultTag = 1;
    private const byte ResolvedTag = 2;

    /// <summary>The fold form of an event, or null when the event has none (read from its payload).</summary>
    public static byte[]? Encode(RunEvent e)
    {
        var w = new ArrayBufferWriter<byte>(32);
        switch (e)
        {
            case GuestFaulted f:
                w.Write([Format, FaultTag]);
                CompactRecord.WriteFault(w, f);
                break;

            case FaultResolved r:
                w.Write([Format, ResolvedTag]);
                CompactRecord.Put(w, Varint.ZigZag(r.InputSeq));
                w.Write([RecordCodes.Outcome.Code(r.Outcome)]);
                CompactRecord.Put(w, Varint.ZigZag(r.Errno));
                CompactRecord.WriteMapping(w, r.Mapping);
                CompactRecord.WritePolicy(w, r.Policy);
                break;

            default:
                return null;
        }

        return w.WrittenSpan.ToArray();
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
                    var fault = CompactRecord.ReadFault(fold, ref n);
                    CompactRecord.End(fold, n);
                    return fault;
                }

                case ResolvedTag:
                {
                    var input = Varint.GetSigned(fold, ref n);
                    var outcome = RecordCodes.Outcome.Value(fold[n++]);
                    var errno = checked((int)Varint.GetSigned(fold, ref n));
                    var mapping = CompactRecord.ReadMapping(fold, ref n);
                    var policy = CompactRecord.ReadPolicy(fold, ref n, _policies);
                    CompactRecord.End(fold, n);
                    return new FaultResolved(input, outcome, errno, mapping, policy, ValueList<ExplanationStep>.Empty);
                }

                default:
                    throw new InvalidDataException($"fold value: unknown tag {fold[1]}");
            }
        }
    }
}
