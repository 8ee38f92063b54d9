using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// A bpftrace ioctl log, one line per call on the monotonic clock in ns: "NS pid=P NAME key=value ..."
/// for the call and "NS pid=P   -> ret=R" for its result. It carries the payloads strace cannot decode
/// (KVM_SET_USER_MEMORY_REGION2, KVM_CREATE_GUEST_MEMFD, KVM_SET_MEMORY_ATTRIBUTES) plus close and
/// fallocate. Alone it gives memslot and guest_memfd events; beside an strace file of the run its
/// calls become <see cref="ImportResult.Payloads"/> that fill in strace's undecoded ioctls
/// (<see cref="PayloadFill"/>).
/// </summary>
public static partial class BpftraceImporter
{
    [GeneratedRegex(@"^(?<ts>\d{4,})\s+pid=(?<pid>\d+)\s+(?<rest>.*)$")]
    private static partial Regex LineRx();

    [GeneratedRegex(@"^->\s*ret=(?<ret>-?\d+)\s*$")]
    private static partial Regex RetRx();

    [GeneratedRegex(@"(?<k>\w+)=(?<v>-?(?:0x)?[0-9a-fA-F]+)")]
    private static partial Regex FieldRx();

    /// <summary>The calls whose result follows on a "-> ret=" line of the same pid.</summary>
    private static readonly HashSet<string> Returning = new(StringComparer.Ordinal)
    {
        "SET_USER_MEMORY_REGION", "SET_USER_MEMORY_REGION2", "CREATE_GUEST_MEMFD", "SET_MEMORY_ATTRIBUTES", "ENABLE_CAP",
    };

    public static bool Looks(string line) => line.StartsWith("Attaching ", StringComparison.Ordinal) && line.Contains("probe", StringComparison.Ordinal) || LineRx().IsMatch(line);

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "bpftrace");
        var pending = new Dictionary<string, IoctlPayload>(StringComparer.Ordinal);
        var gmemFds = new HashSet<ulong>();
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            if (string.IsNullOrWhiteSpace(line) || line.StartsWith("Attaching ", StringComparison.Ordinal) || line.StartsWith('@') || line.StartsWith('#'))
            {
                result.Count("header, blank or map dump");
                continue;
            }

            var m = LineRx().Match(line);
            if (!m.Success)
            {
                result.Error = new TraceError(file, lineNo, "not a bpftrace ioctl line (expected 'NS pid=PID NAME key=value...' or 'NS pid=PID -> ret=R')");
                return result;
            }

            if (!long.TryParse(m.Groups["ts"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var ts))
            {
                result.Error = new TraceError(file, lineNo, $"timestamp '{m.Groups["ts"].Value}' is out of range");
                return result;
            }

            var pid = m.Groups["pid"].Value;
            var rest = m.Groups["rest"].Value.Trim();
            if (RetRx().Match(rest) is { Success: true } r)
            {
                if (!pending.Remove(pid, out var call))
                {
                    result.Count("result without its call");
                    continue;
                }

                if (!long.TryParse(r.Groups["ret"].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var ret))
                {
                    result.Error = new TraceError(file, lineNo, $"result '{r.Groups["ret"].Value}' is out of range");
                    return result;
                }

                result.Count("result (joined with its call)");
                Complete(result, gmemFds, call with { Ret = ret });
                continue;
            }

            var space = rest.IndexOf(' ', StringComparison.Ordinal);
            var name = space < 0 ? rest : rest[..space];
            if (name.Length == 0 || !char.IsLetter(name[0]))
            {
                result.Error = new TraceError(file, lineNo, $"cannot read the call name in '{rest}'");
                return result;
            }

            var fields = new Dictionary<string, ulong>(StringComparer.Ordinal);
            foreach (Match f in FieldRx().Matches(rest))
            {
                if (!Syntax.TryNumber(f.Groups["v"].Value, out var v))
                {
                    result.Error = new TraceError(file, lineNo, $"{name}: '{f.Groups["k"].Value}={f.Groups["v"].Value}' is not a number");
                    return result;
                }

                fields[f.Groups["k"].Value] = v;
            }

            var payload = new IoctlPayload(lineNo, ts, name, fields, null);
            if (Returning.Contains(name))
            {
                if (pending.Remove(pid, out var unfinished))
                {
                    Complete(result, gmemFds, unfinished);
                }

                pending[pid] = payload;
            }
            else
            {
                Complete(result, gmemFds, payload);
            }
        }

        foreach (var call in pending.Values.OrderBy(p => p.Line))
        {
            Complete(result, gmemFds, call);
        }

        return result;
    }

    /// <summary>The standalone reading of one call: an event, or a count by name.</summary>
    private static void Complete(ImportResult result, HashSet<ulong> gmemFds, IoctlPayload call)
    {
        result.Payloads.Add(call);
        var f = call.Fields;
        ulong F(string k) => f.GetValueOrDefault(k);
        int? errno = call.Ret is { } ret ? (ret < 0 ? (int)-ret : 0) : null;
        void Add(InputEvent e) => result.Events.Add(new ImportedEvent(call.Line, call.TsNs, e));
        switch (call.Name)
        {
            case "SET_USER_MEMORY_REGION" or "SET_USER_MEMORY_REGION2":
                Add(Memslot(call, new Hva(F("hva")), (int)F("gmem_fd"), errno));
                break;
            case "CREATE_GUEST_MEMFD":
                if (call.Ret is >= 0)
                {
                    gmemFds.Add((ulong)call.Ret.Value);
                }

                Add(new GuestMemfdCreated(call.Ret is >= 0 ? (int)call.Ret.Value : -1, F("size"), (GuestMemfdFlags)(int)(F("flags") & 3), errno));
                break;
            case "SET_MEMORY_ATTRIBUTES":
                Add(Attributes(call, errno));
                break;
            case "fallocate" when gmemFds.Contains(F("fd")):
                Add(new GuestMemfdFallocated((int)F("fd"), F("off"), F("len"), (F("mode") & 0x2) != 0));
                break;
            case "close" when gmemFds.Remove(F("fd")):
                Add(new GuestMemfdClosed((int)F("fd")));
                break;
            default:
                result.Count(call.Name + (call.Name is "close" or "fallocate" ? " (not a guest_memfd)" : ""));
                break;
        }
    }

    /// <summary>A memslot from a REGION or REGION2 payload; the hva and guest_memfd are given (they may be translated).</summary>
    internal static MemslotSet Memslot(IoctlPayload call, Hva hva, int gmemFd, int? errno)
    {
        var f = call.Fields;
        var slot = f.GetValueOrDefault("slot");
        var flags = (MemslotFlags)(int)(f.GetValueOrDefault("flags") & 0x1f);
        var gmem = (flags & MemslotFlags.KVM_MEM_GUEST_MEMFD) != 0;
        return new MemslotSet((int)(slot & 0xffff), (int)(slot >> 16), new Gpa(f.GetValueOrDefault("gpa")), f.GetValueOrDefault("size"), hva, flags,
            gmem ? gmemFd : null, gmem ? f.GetValueOrDefault("gmem_off") : null, errno);
    }

    /// <summary>KVM_MEMORY_ATTRIBUTE_PRIVATE is bit 3.</summary>
    internal static MemoryAttributesSet Attributes(IoctlPayload call, int? errno) =>
        new(new Gpa(call.Fields.GetValueOrDefault("gpa")), call.Fields.GetValueOrDefault("size"), (call.Fields.GetValueOrDefault("attrs") & 0x8) != 0, errno);
}
