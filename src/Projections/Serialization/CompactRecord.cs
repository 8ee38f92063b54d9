using System.Buffers;
using System.Text;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>
/// Version 2 of guest_faulted and fault_resolved as stored (ADR 0013): the event as varints in
/// <c>events.fold</c>, the payload null. A decision keeps what it is: its outcome and mapping, and per
/// explanation step the id of a repeated step or of the step's shape (StepTable) followed by the values
/// the shape took out; the sentences come back from the run's table when read. Enums are written as
/// stable codes (<see cref="RecordCodes"/>), never as CLR ordinals.
/// </summary>
/// <remarks>
/// Layout: format byte 2, tag (1 guest_faulted, 2 fault_resolved), then
/// guest_faulted: vcpu (zigzag), gpa, access, kind, flags, granule when flagged;
/// fault_resolved: outcome (at byte 2, where SQL reads it), seq - inputSeq (zigzag), errno (zigzag),
/// mapping flags, the mapping, the policy (length, UTF-8), the step count, the steps.
/// A fold (ADR 0007) reads the same bytes and stops before the steps.
/// </remarks>
public static class CompactRecord
{
    public const byte Format = 2;

    private const byte FaultTag = 1;
    private const byte ResolvedTag = 2;

    /// <summary>
    /// The sighting at which a run's step is stored whole and named by id (ADR 4); until then it is written as
    /// its shape and values. On 300,000 synthetic events (records and table entries, per event): on the 2nd
    /// sighting 27.9 bytes (7,181 entries), 4th 25.4, 8th 23.1, 16th 21.6 (398 entries), 64th 21.4, never 42.5.
    /// </summary>
    public const int WholeStepSightings = 16;

    /// <summary>The stored version this form is (the events.version column of its rows).</summary>
    public const short Version = 2;

    /// <summary>Whether an event is stored in this form (when it carries no unknown trace fields).</summary>
    public static bool Applies(RunEvent e) => e is GuestFaulted or FaultResolved;

    /// <summary>The record of an event at <paramref name="seq"/>, interning its steps and shapes into the run's writer table.</summary>
    public static byte[] Encode(RunEvent e, long seq, StepTable steps)
    {
        var w = new ArrayBufferWriter<byte>(64);
        Encode(e, seq, steps, w);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>
    /// The same, written to the end of <paramref name="w"/>: an append encodes its events one after the other into one
    /// buffer it reuses, where a buffer and an array per event made 254 KiB allocated per append of 100 inputs, against 217 with one (docs/benchmarks.md).
    /// </summary>
    public static void Encode(RunEvent e, long seq, StepTable steps, ArrayBufferWriter<byte> w)
    {
        w.Write([Format]);
        switch (e)
        {
            case GuestFaulted f:
                w.Write([FaultTag]);
                WriteFault(w, f);
                break;

            case FaultResolved r:
                w.Write([ResolvedTag, RecordCodes.Outcome.Code(r.Outcome)]);
                PutSigned(w, seq - r.InputSeq);
                PutSigned(w, r.Errno);
                WriteMapping(w, r.Mapping);
                WritePolicy(w, r.Policy);
                WriteExplanation(w, r.Explanation, r.InputSeq, steps);
                break;

            default:
                throw new ArgumentException($"{e.GetType().Name} has no compact record", nameof(e));
        }
    }

    /// <summary>
    /// The event a record holds; with <paramref name="steps"/> null a decision comes back without its
    /// explanation (a fold). A step id the table lacks throws <see cref="StepMissingException"/>.
    /// </summary>
    public static RunEvent Decode(ReadOnlySpan<byte> record, long seq, StepTable? steps, PolicyCache policies)
    {
        if (record.Length < 3 || record[0] != Format)
        {
            throw new InvalidDataException("not a compact record of format " + Format);
        }

        var n = 2;
        switch (record[1])
        {
            case FaultTag:
            {
                var fault = ReadFault(record, ref n);
                End(record, n);
                return fault;
            }

            case ResolvedTag:
            {
                var outcome = RecordCodes.Outcome.Value(record[n++]);
                var input = seq - Varint.GetSigned(record, ref n);
                var errno = checked((int)Varint.GetSigned(record, ref n));
                var mapping = ReadMapping(record, ref n);
                var policy = ReadPolicy(record, ref n, policies);
                var explanation = steps is null ? ValueList<ExplanationStep>.Empty : ReadExplanation(record, ref n, input, steps);
                if (steps is not null)
                {
                    End(record, n);
                }

                return new FaultResolved(input, outcome, errno, mapping, policy, explanation);
            }

            default:
                throw new InvalidDataException($"compact record: unknown tag {record[1]}");
        }
    }

    /// <summary>A fault's fields: vcpu, gpa, access, kind, flags (private, s1ptw, cm, granule, gpteDirty), the granule when there is one.</summary>
    internal static void WriteFault(ArrayBufferWriter<byte> w, GuestFaulted f)
    {
        PutSigned(w, f.Vcpu);
        Put(w, f.Gpa.Value);
        var flags = (f.Private is { } p ? 1 | (p ? 2 : 0) : 0) | (f.S1ptw ? 4 : 0) | (f.Cm ? 8 : 0)
            | (f.Granule is not null ? 16 : 0) | (f.GuestPteDirty is { } d ? 32 | (d ? 64 : 0) : 0);
        w.Write([RecordCodes.Access.Code(f.Access), RecordCodes.FaultKind.Code(f.Kind), (byte)flags]);
        if (f.Granule is { } g)
        {
            Put(w, g);
        }
    }

    internal static GuestFaulted ReadFault(ReadOnlySpan<byte> from, ref int n)
    {
        var vcpu = checked((int)Varint.GetSigned(from, ref n));
        var gpa = Varint.Get(from, ref n);
        var access = RecordCodes.Access.Value(from[n++]);
        var kind = RecordCodes.FaultKind.Value(from[n++]);
        int flags = from[n++];
        ulong? granule = (flags & 16) != 0 ? Varint.Get(from, ref n) : null;
        return new GuestFaulted(
            vcpu, new Gpa(gpa), access, kind,
            (flags & 1) != 0 ? (flags & 2) != 0 : null,
            (flags & 4) != 0,
            (flags & 8) != 0,
            granule,
            (flags & 32) != 0 ? (flags & 64) != 0 : null);
    }

    internal static void WritePolicy(ArrayBufferWriter<byte> w, string policy)
    {
        Put(w, (ulong)Encoding.UTF8.GetByteCount(policy));
        w.Advance(Encoding.UTF8.GetBytes(policy, w.GetSpan(Encoding.UTF8.GetMaxByteCount(policy.Length))));
    }

    internal static string ReadPolicy(ReadOnlySpan<byte> from, ref int n, PolicyCache policies)
    {
        var length = checked((int)Varint.Get(from, ref n));
        var policy = policies.Get(from.Slice(n, length));
        n += length;
        return policy;
    }

    internal static void WriteMapping(ArrayBufferWriter<byte> w, Mapping? m)
    {
        w.Write([(byte)(m is null ? 0 : 1 | (m.Ipat is { } i ? 2 | (i ? 4 : 0) : 0))]);
        if (m is not null)
        {
            Put(w, m.Gpa.Value);
            Put(w, m.Size);
            w.Write([RecordCodes.MemType.Code(m.MemType), (byte)m.Perms]);
        }
    }

    internal static Mapping? ReadMapping(ReadOnlySpan<byte> record, ref int n)
    {
        int flags = record[n++];
        if ((flags & 1) == 0)
        {
            return null;
        }

        var gpa = Varint.Get(record, ref n);
        var size = Varint.Get(record, ref n);
        var memType = RecordCodes.MemType.Value(record[n++]);
        var perms = record[n++];
        if (perms > 7)
        {
            throw new InvalidDataException("compact record: perms out of range");
        }

        return new Mapping(new Gpa(gpa), size, memType, (flags & 2) != 0 ? (flags & 4) != 0 : null, (Perms)perms);
    }

    /// <summary>Each step as the id of the same step stored before, or as its shape's id and the values the shape took out.</summary>
    private static void WriteExplanation(ArrayBufferWriter<byte> w, ValueList<ExplanationStep> explanation, long inputSeq, StepTable steps)
    {
        Put(w, (ulong)explanation.Count);
        var args = new List<ulong>(8);
        foreach (var step in explanation)
        {
            if (steps.Intern(step, WholeStepSightings) is { } id)
            {
                Put(w, (ulong)id);
                continue;
            }

            args.Clear();
            Put(w, (ulong)steps.InternShape(step, inputSeq, args));
            foreach (var a in args)
            {
                Put(w, a);
            }
        }
    }

    private static ValueList<ExplanationStep> ReadExplanation(ReadOnlySpan<byte> record, ref int n, long inputSeq, StepTable steps)
    {
        var count = checked((int)Varint.Get(record, ref n));
        var read = new ExplanationStep[count];
        for (var i = 0; i < count; i++)
        {
            var id = checked((int)Varint.Get(record, ref n));
            if (steps.TryResolve(id, out var step))
            {
                read[i] = step;
            }
            else if (steps.TryResolveShape(id, out var shape))
            {
                read[i] = shape.Render(record, ref n, inputSeq);
            }
            else
            {
                throw new StepMissingException(id);
            }
        }

        return ValueList<ExplanationStep>.Own(read);
    }

    internal static void End(ReadOnlySpan<byte> record, int n)
    {
        if (n != record.Length)
        {
            throw new InvalidDataException($"compact record: {record.Length - n} bytes left over");
        }
    }

    internal static void Put(ArrayBufferWriter<byte> w, ulong v) => w.Advance(Varint.Put(w.GetSpan(10), v));

    private static void PutSigned(ArrayBufferWriter<byte> w, long v) => Put(w, Varint.ZigZag(v));
}

/// <summary>The last policy string a read decoded: nearly every decision of a run repeats it.</summary>
public sealed class PolicyCache
{
    private byte[] _bytes = [];
    private string _policy = "";

    public string Get(ReadOnlySpan<byte> bytes)
    {
        if (!bytes.SequenceEqual(_bytes))
        {
            _bytes = bytes.ToArray();
            _policy = Encoding.UTF8.GetString(bytes);
        }

        return _policy;
    }
}
