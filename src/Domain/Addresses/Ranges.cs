namespace Audit.Domain.Addresses;

/// <summary>A half-open guest physical interval [Start, End). Never empty.</summary>
public readonly record struct GpaRange
{
    public GpaRange(Gpa start, Gpa end)
    {
        if (end.Value <= start.Value)
        {
            throw new ArgumentException($"empty or inverted gpa range [{start}, {end})");
        }

        Start = start;
        End = end;
    }

    public Gpa Start { get; }
    public Gpa End { get; }
    public ulong Size => End.Value - Start.Value;

    public static GpaRange FromSize(Gpa start, ulong size) => new(start, new Gpa(checked(start.Value + size)));

    public bool Contains(Gpa a) => a.Value >= Start.Value && a.Value < End.Value;

    public bool Contains(GpaRange other) => other.Start.Value >= Start.Value && other.End.Value <= End.Value;

    public bool Overlaps(GpaRange other) => Start.Value < other.End.Value && other.Start.Value < End.Value;

    public override string ToString() => $"[{Start}, {End})";
}

/// <summary>A half-open host virtual interval [Start, End). Never empty.</summary>
public readonly record struct HvaRange
{
    public HvaRange(Hva start, Hva end)
    {
        if (end.Value <= start.Value)
        {
            throw new ArgumentException($"empty or inverted hva range [{start}, {end})");
        }

        Start = start;
        End = end;
    }

    public Hva Start { get; }
    public Hva End { get; }
    public ulong Size => End.Value - Start.Value;

    public static HvaRange FromSize(Hva start, ulong size) => new(start, new Hva(checked(start.Value + size)));

    public bool Contains(Hva a) => a.Value >= Start.Value && a.Value < End.Value;

    public bool Overlaps(HvaRange other) => Start.Value < other.End.Value && other.Start.Value < End.Value;

    public override string ToString() => $"[{Start}, {End})";
}
