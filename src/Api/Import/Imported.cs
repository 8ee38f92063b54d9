using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>An event read from a foreign trace, with where it came from (for merging and for errors).</summary>
public sealed record ImportedEvent(int Line, long? TsNs, InputEvent Event, string? SyscallKey = null);

/// <summary>One decoded call of a payload source (bpftrace): its name, its fields by name and its result.</summary>
public sealed record IoctlPayload(int Line, long TsNs, string Name, IReadOnlyDictionary<string, ulong> Fields, long? Ret);

/// <summary>
/// A KVM ioctl of the trace: <paramref name="Decoded"/> when its event is in <see cref="ImportResult.Events"/>
/// at <paramref name="At"/>, else the place an event filled in from another source goes. <paramref name="Name"/>
/// is the bpftrace-style name (SET_USER_MEMORY_REGION2, CREATE_GUEST_MEMFD...).
/// </summary>
public sealed record KvmCall(int Line, long TsNs, string Name, bool Decoded, int At, int? Errno, ulong? Ret, string CountedAs);

/// <summary>An mmap of a file descriptor (guest_memfd or memfd), by the fd number of this trace.</summary>
public sealed record FdMapping(ulong Fd, ulong Start, ulong Length, int At);

/// <summary>
/// What one file gave: events in file order, and every other line counted by kind, so that nothing is
/// dropped silently. <see cref="ClockMatches"/> are (key, ts) pairs another file of the run can align on.
/// </summary>
public sealed class ImportResult(string file, string format)
{
    public string File { get; } = file;
    public string Format { get; set; } = format;
    public List<ImportedEvent> Events { get; } = [];
    public SortedDictionary<string, int> Counted { get; } = new(StringComparer.Ordinal);
    public List<(string Key, long TsNs)> ClockMatches { get; } = [];

    /// <summary>Calls a payload source gives (bpftrace), in file order.</summary>
    public List<IoctlPayload> Payloads { get; } = [];

    /// <summary>KVM memory ioctls in file order, decoded or not (strace), for pairing with a payload source.</summary>
    public List<KvmCall> Calls { get; } = [];

    public List<FdMapping> FdMappings { get; } = [];

    /// <summary>What the file shows about the host that recorded it (for a run without a HostDescribed event).</summary>
    public HostClues Host { get; } = new();

    /// <summary>The file carries no time of its own (a page-table snapshot): ingest dates it by the file's modification time unless a clock offset is given.</summary>
    public bool Undated { get; set; }

    /// <summary>The process and thread ids the file's lines name (to tell recordings of another run apart in a capture folder).</summary>
    public HashSet<string> Pids { get; } = new(StringComparer.Ordinal);

    /// <summary>What the summary must say about how the file was read (fewer facts, reordered lines...).</summary>
    public List<string> Notes { get; } = [];
    public int Lines { get; set; }
    public TraceError? Error { get; set; }

    public void Count(string kind) => Counted[kind] = Counted.GetValueOrDefault(kind) + 1;

    /// <summary>Takes back one count of <paramref name="kind"/> (the line now gave an event, or is counted as another kind).</summary>
    public void Uncount(string kind)
    {
        if (Counted.TryGetValue(kind, out var n))
        {
            if (n <= 1)
            {
                Counted.Remove(kind);
            }
            else
            {
                Counted[kind] = n - 1;
            }
        }
    }

    public int Parsed => Lines - Counted.Values.Sum();
}
