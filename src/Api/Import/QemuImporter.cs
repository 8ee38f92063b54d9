using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// QEMU trace events from its log backend (`-trace kvm_set_user_memory -trace kvm_convert_memory ...`):
/// lines "PID@SECONDS.MICROS:event message" (the time is the wall clock), or bare "event message".
/// kvm_set_user_memory becomes MemslotSet (with guest_memfd and offset where QEMU prints them),
/// kvm_convert_memory MemoryAttributesSet, kvm_memory_fault MemoryFaultExitObserved, and
/// vfio_region_mmap a vfio VmaMapped where QEMU prints the address it mapped. Other events and other
/// log output are counted by name.
/// </summary>
public static partial class QemuImporter
{
    [GeneratedRegex(@"^(?:(?<pid>\d+)@(?<ts>\d+\.\d+):|(?<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?)\s+)?(?<event>[a-z][a-z0-9_]+)(?:\s+(?<msg>.*))?$")]
    private static partial Regex LineRx();

    [GeneratedRegex(@"(?:AddrSpace#(?<as>\d+)\s+)?Slot#(?<slot>\d+)\s+flags=(?<flags>0x[0-9a-f]+)\s+gpa=(?<gpa>0x[0-9a-f]+)\s+size=(?<size>0x[0-9a-f]+)\s+ua=(?<ua>0x[0-9a-f]+)(?:\s+(?:guest_memfd|gmem_fd)=(?<fd>-?\d+)\s+(?:guest_memfd_offset|gmem_fd_offset)=(?<off>0x[0-9a-f]+))?\s+ret=(?<ret>-?\d+)")]
    private static partial Regex SetMemoryRx();

    [GeneratedRegex(@"start\s+(?<start>0x[0-9a-f]+)\s+size\s+(?<size>0x[0-9a-f]+)(?:\s+flags\s+(?<flags>0x[0-9a-f]+)|\s+(?<what>\w+))?")]
    private static partial Regex RangeRx();

    [GeneratedRegex(@"^""?(?<name>.+?)""?\s+\[(?<off>0x[0-9a-f]+)\s+-\s+(?<end>0x[0-9a-f]+)\](?:\s+maps to\s+(?<addr>0x[0-9a-f]+))?")]
    private static partial Regex VfioMmapRx();

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal) { "kvm_set_user_memory", "kvm_convert_memory", "kvm_memory_fault", "vfio_region_mmap" };

    public static bool Looks(string line) => LineRx().Match(line) is { Success: true } m && (m.Groups["pid"].Success || Known.Contains(m.Groups["event"].Value));

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "qemu");
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            var m = LineRx().Match(line.TrimEnd());
            if (string.IsNullOrWhiteSpace(line) || !m.Success)
            {
                result.Count(string.IsNullOrWhiteSpace(line) ? "blank" : "other QEMU log output");
                continue;
            }

            long? ts = m.Groups["ts"].Success ? (long)(decimal.Parse(m.Groups["ts"].Value, CultureInfo.InvariantCulture) * 1_000_000_000m)
                : m.Groups["iso"].Success && DateTimeOffset.TryParse(m.Groups["iso"].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var iso) ? (iso - DateTimeOffset.UnixEpoch).Ticks * 100 : null;
            var ev = m.Groups["event"].Value;
            var msg = m.Groups["msg"].Value;
            void Add(InputEvent e) => result.Events.Add(new ImportedEvent(lineNo, ts, e));
            if (!Known.Contains(ev))
            {
                result.Count(m.Groups["pid"].Success ? ev : "other QEMU log output");
                continue;
            }

            switch (ev)
            {
                case "kvm_set_user_memory" when SetMemoryRx().Match(msg) is { Success: true } s:
                {
                    var flags = (MemslotFlags)(int)(Hex(s.Groups["flags"].Value) & 0x1f);
                    var gmem = (flags & MemslotFlags.KVM_MEM_GUEST_MEMFD) != 0 && s.Groups["fd"].Success;
                    var ret = int.Parse(s.Groups["ret"].Value, CultureInfo.InvariantCulture);
                    Add(new MemslotSet(int.Parse(s.Groups["slot"].Value, CultureInfo.InvariantCulture), s.Groups["as"].Success ? int.Parse(s.Groups["as"].Value, CultureInfo.InvariantCulture) : 0,
                        new Gpa(Hex(s.Groups["gpa"].Value)), Hex(s.Groups["size"].Value), new Hva(Hex(s.Groups["ua"].Value)), flags,
                        gmem ? int.Parse(s.Groups["fd"].Value, CultureInfo.InvariantCulture) : null, gmem ? Hex(s.Groups["off"].Value) : null, ret < 0 ? -ret : 0));
                    break;
                }

                case "kvm_convert_memory" when RangeRx().Match(msg) is { Success: true, Groups: var g } && g["what"].Success:
                    Add(new MemoryAttributesSet(new Gpa(Hex(g["start"].Value)), Hex(g["size"].Value), g["what"].Value.EndsWith("to_private", StringComparison.Ordinal), null));
                    break;
                case "kvm_memory_fault" when RangeRx().Match(msg) is { Success: true, Groups: var g }:
                    Add(new MemoryFaultExitObserved(new Gpa(Hex(g["start"].Value)), Hex(g["size"].Value), g["flags"].Success ? Hex(g["flags"].Value) : 0));
                    break;
                case "vfio_region_mmap" when VfioMmapRx().Match(msg.StartsWith("Region ", StringComparison.Ordinal) ? msg[7..] : msg) is { Success: true } v:
                    if (v.Groups["addr"].Success && Hex(v.Groups["end"].Value) >= Hex(v.Groups["off"].Value))
                    {
                        // [offset - end] is inclusive; the mapping is shared device memory (vfio_pci_mmap sets VM_IO|VM_PFNMAP).
                        var size = Syntax.PageUp(Hex(v.Groups["end"].Value) - Hex(v.Groups["off"].Value) + 1);
                        Add(new VmaMapped(HvaRange.FromSize(new Hva(Hex(v.Groups["addr"].Value)), size), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP,
                            null, new Backing(BackingKind.Vfio, v.Groups["name"].Value, Pgoff: Hex(v.Groups["off"].Value) >> 12)));
                    }
                    else
                    {
                        result.Count("vfio_region_mmap (this QEMU does not print the address)");
                    }

                    break;
                default:
                    result.Error = new TraceError(file, lineNo, $"{ev}: cannot read '{(msg.Length > 60 ? msg[..60] + "..." : msg)}'");
                    return result;
            }
        }

        return result;
    }

    private static ulong Hex(string s) => FtraceImporter.Number(s);
}
