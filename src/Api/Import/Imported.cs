using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>An event read from a foreign trace, with where it came from (for merging and for errors).</summary>
public sealed record ImportedEvent(int Line, long? TsNs, InputEvent Event, string? SyscallKey = null);

/// <summary>
/// What one file gave: events in file order, and every other line counted by kind, so that nothing is
/// dropped silently. <see cref="ClockMatches"/> are (key, ts) pairs another file of the run can align on.
/// </summary>
public sealed class ImportResult(string file, string format)
{
    public string File { get; } = file;
    public string Format { get; } = format;
    public List<ImportedEvent> Events { get; } = [];
    public SortedDictionary<string, int> Counted { get; } = new(StringComparer.Ordinal);
    public List<(string Key, long TsNs)> ClockMatches { get; } = [];
    public int Lines { get; set; }
    public TraceError? Error { get; set; }

    public void Count(string kind) => Counted[kind] = Counted.GetValueOrDefault(kind) + 1;

    public int Parsed => Lines - Counted.Values.Sum();
}
