using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Api.Import;

/// <summary>
/// Fills in the KVM ioctls an strace file could not decode from a payload source of the same VMM
/// (a bpftrace ioctl log). Calls pair up by kind and order (the n-th REGION2 of one is the n-th of the
/// other). When the source was recorded in another run of the VMM its addresses differ: host addresses
/// are translated by the offset the decoded memslots of both agree on most, and a guest_memfd memslot
/// falls back to the mmap of its guest_memfd; guest_memfd numbers map through the paired creations.
/// Results stay strace's (it saw the call). The source's own lines are counted, not stored twice.
/// </summary>
public static class PayloadFill
{
    public sealed record Outcome(int Filled, int Translated, int Unpaired);

    public static Outcome Fill(ImportResult strace, ImportResult source)
    {
        var pairs = new List<(KvmCall Call, IoctlPayload Payload)>();
        var unpaired = 0;
        foreach (var kind in strace.Calls.Select(c => c.Name).Distinct(StringComparer.Ordinal))
        {
            var calls = strace.Calls.Where(c => c.Name == kind).ToList();
            var payloads = source.Payloads.Where(p => p.Name == kind).ToList();
            unpaired += Math.Abs(calls.Count - payloads.Count);
            pairs.AddRange(calls.Zip(payloads));
        }

        // Host-address offsets the decoded memslots vote for; guest_memfd numbers through the creations.
        var votes = new Dictionary<long, int>();
        foreach (var (call, payload) in pairs.Where(p => p.Call.Decoded && p.Call.Name.StartsWith("SET_USER_MEMORY_REGION", StringComparison.Ordinal)))
        {
            if (strace.Events[call.At].Event is MemslotSet s && s.Size > 0 && s.Gpa.Value == payload.Fields.GetValueOrDefault("gpa"))
            {
                var delta = unchecked((long)(payload.Fields.GetValueOrDefault("hva") - s.Hva.Value));
                votes[delta] = votes.GetValueOrDefault(delta) + 1;
            }
        }

        var deltas = votes.OrderByDescending(v => v.Value).Select(v => v.Key).DefaultIfEmpty(0).ToList();
        var fdMap = pairs.Where(p => p.Call.Name == "CREATE_GUEST_MEMFD" && p.Call.Ret is { } && p.Payload.Ret is >= 0)
            .GroupBy(p => (ulong)p.Payload.Ret!.Value).ToDictionary(g => g.Key, g => g.Last().Call.Ret!.Value);

        var inserts = new List<(int At, int Order, ImportedEvent Event, KvmCall Call)>();
        var translated = 0;
        foreach (var (call, payload) in pairs.Where(p => !p.Call.Decoded))
        {
            InputEvent? ev = call.Name switch
            {
                "SET_USER_MEMORY_REGION" or "SET_USER_MEMORY_REGION2" => Memslot(strace, call, payload, deltas, fdMap, ref translated),
                "CREATE_GUEST_MEMFD" => new GuestMemfdCreated(call.Ret is { } fd ? (int)fd : -1, payload.Fields.GetValueOrDefault("size"),
                    (GuestMemfdFlags)(int)(payload.Fields.GetValueOrDefault("flags") & 3), call.Errno),
                "SET_MEMORY_ATTRIBUTES" => BpftraceImporter.Attributes(payload, call.Errno),
                _ => null,
            };
            if (ev is not null)
            {
                inserts.Add((call.At, call.Line, new ImportedEvent(call.Line, call.TsNs, ev), call));
            }
        }

        // Insert from the back so earlier positions stay valid; calls at one position keep their order.
        foreach (var (at, _, ev, call) in inserts.OrderByDescending(i => i.At).ThenByDescending(i => i.Order))
        {
            strace.Events.Insert(at, ev);
            strace.Uncount(call.CountedAs);
        }

        // Every line of the source is still accounted for, now as a payload of the strace file.
        var used = pairs.Select(p => p.Payload.Line).ToHashSet();
        var parsedLines = source.Events.Select(e => e.Line).ToHashSet();
        foreach (var p in source.Payloads)
        {
            var kind = used.Contains(p.Line) ? $"{p.Name} (payload for {Path.GetFileName(strace.File)})" : $"{p.Name} (not a KVM ioctl: the strace file's own syscalls are used)";
            if (parsedLines.Contains(p.Line))
            {
                source.Count(kind);
            }
            else
            {
                // Counted already by name in the standalone reading: keep the line counted once.
                source.Uncount(p.Name + (p.Name is "close" or "fallocate" ? " (not a guest_memfd)" : ""));
                source.Count(kind);
            }
        }

        source.Events.Clear();
        return new Outcome(inserts.Count, translated, unpaired);
    }

    private static MemslotSet Memslot(ImportResult strace, KvmCall call, IoctlPayload payload, List<long> deltas, Dictionary<ulong, ulong> fdMap, ref int translated)
    {
        var hva = payload.Fields.GetValueOrDefault("hva");
        var size = payload.Fields.GetValueOrDefault("size");
        var gmemFd = payload.Fields.GetValueOrDefault("gmem_fd");
        var fd = fdMap.TryGetValue(gmemFd, out var mapped) ? mapped : gmemFd;
        var live = LiveVmas(strace, call.At);
        ulong? chosen = null;
        foreach (var d in deltas)
        {
            var candidate = unchecked(hva - (ulong)d);
            if (size == 0 || Covered(live, candidate, size))
            {
                chosen = candidate;
                break;
            }
        }

        if (chosen is null && (payload.Fields.GetValueOrDefault("flags") & 0x4) != 0)
        {
            // A guest_memfd slot whose hva is the mmap of the guest_memfd itself.
            chosen = strace.FdMappings.LastOrDefault(m => m.Fd == fd && m.At <= call.At && m.Length >= size && Covered(live, m.Start, size))?.Start;
        }

        if (chosen is { } c && c != hva)
        {
            translated++;
        }

        return BpftraceImporter.Memslot(payload, new Hva(chosen ?? hva), (int)fd, call.Errno);
    }

    /// <summary>The VMAs of the strace file just before event <paramref name="at"/>, as sorted disjoint ranges.</summary>
    private static List<(ulong Start, ulong End)> LiveVmas(ImportResult strace, int at)
    {
        var live = new List<(ulong Start, ulong End)>();
        for (var i = 0; i < at && i < strace.Events.Count; i++)
        {
            switch (strace.Events[i].Event)
            {
                case VmaMapped m:
                    Remove(live, m.Range);
                    live.Add((m.Range.Start.Value, m.Range.End.Value));
                    break;
                case VmaUnmapped u:
                    Remove(live, u.Range);
                    break;
            }
        }

        live.Sort();
        return live;
    }

    private static void Remove(List<(ulong Start, ulong End)> live, HvaRange r)
    {
        for (var i = live.Count - 1; i >= 0; i--)
        {
            var (s, e) = live[i];
            if (e <= r.Start.Value || s >= r.End.Value)
            {
                continue;
            }

            live.RemoveAt(i);
            if (s < r.Start.Value)
            {
                live.Add((s, r.Start.Value));
            }

            if (e > r.End.Value)
            {
                live.Add((r.End.Value, e));
            }
        }
    }

    private static bool Covered(List<(ulong Start, ulong End)> live, ulong start, ulong size)
    {
        var end = start + size;
        ulong covered = 0;
        foreach (var (s, e) in live)
        {
            var lo = Math.Max(s, start);
            var hi = Math.Min(e, end);
            if (hi > lo)
            {
                covered += hi - lo;
            }
        }

        return covered == size;
    }
}
