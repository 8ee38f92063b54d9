using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>
/// Stable one-byte codes of an enum in compact records (ADR 0013): a value's code is its place in a list
/// written out here, so reordering the enum in Domain changes no stored byte. New values go at the end;
/// a value without a code cannot be stored compactly (a test checks every value has one).
/// </summary>
public sealed class RecordCode<T>
    where T : struct, Enum
{
    private readonly T[] _values;
    private readonly Dictionary<T, byte> _codes;

    public RecordCode(params T[] values)
    {
        _values = values;
        _codes = values.Select((v, i) => (v, (byte)i)).ToDictionary(p => p.v, p => p.Item2);
    }

    public IReadOnlyList<T> Values => _values;

    public byte Code(T value) => _codes.TryGetValue(value, out var c) ? c : throw new InvalidOperationException($"{typeof(T).Name}.{value} has no stable record code (RecordCodes)");

    public T Value(byte code) => code < _values.Length ? _values[code] : throw new InvalidDataException($"compact record: {typeof(T).Name} code {code} out of range");
}

public static class RecordCodes
{
    public static readonly RecordCode<Access> Access = new(Domain.Events.Access.Read, Domain.Events.Access.Write, Domain.Events.Access.Exec);

    public static readonly RecordCode<FaultKind> FaultKind = new(Domain.Events.FaultKind.Translation, Domain.Events.FaultKind.Permission, Domain.Events.FaultKind.AccessFlag);

    public static readonly RecordCode<Stage2MemType> MemType = new(
        Stage2MemType.Normal, Stage2MemType.NormalNC, Stage2MemType.Device, Stage2MemType.WB, Stage2MemType.WC, Stage2MemType.WT, Stage2MemType.WP, Stage2MemType.UC);

    /// <summary>SQL reads this code at byte 2 of a fault_resolved record (EventDensity).</summary>
    public static readonly RecordCode<FaultOutcome> Outcome = new(
        FaultOutcome.Mapped, FaultOutcome.Relaxed, FaultOutcome.Young, FaultOutcome.MmioExit, FaultOutcome.MemoryFaultExit, FaultOutcome.InjectIabt,
        FaultOutcome.InjectDabt, FaultOutcome.Sigbus, FaultOutcome.Error, FaultOutcome.Skipped, FaultOutcome.Kept);
}
