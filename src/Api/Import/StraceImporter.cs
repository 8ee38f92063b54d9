using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// strace text, whatever the options: -f (with or without pids), -t/-tt/-ttt/-r timestamps (none: events keep
/// file order), -y/-yy descriptor paths, -T durations, -X raw|abbrev|verbose, -N argument names, -v, -s N,
/// -e raw=ioctl, --kvm=vcpu exit reasons, calls split over `&lt;unfinished ...&gt;` and `&lt;... resumed&gt;` by
/// other threads, signals and exits. mmap/munmap/mprotect/madvise, memfd_create, fallocate and close
/// become VMA and guest_memfd events; KVM_CREATE_VM and the decoded KVM_SET_USER_MEMORY_REGION(2) and
/// KVM_ENABLE_CAP become VM, memslot and capability events; x86 and arm64 KVM ioctls and exit reasons tell
/// the host's architecture. Undecoded ioctls and every other line are counted by kind.
/// </summary>
public static partial class StraceImporter
{
    public static bool Looks(string line) => StraceLine.Parse(line) is { } l && (StraceLine.Call(l.Rest).Success || l.Rest.StartsWith("<...", StringComparison.Ordinal) || StraceLine.Unfinished(l.Rest).Success);

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "strace");
        var fds = new Dictionary<ulong, (string Kind, string? Name)>();
        var pending = new Dictionary<string, (string Call, string Args)>(StringComparer.Ordinal);
        var lineNo = 0;
        long? relative = null;
        var timed = false;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            if (Other(result, line))
            {
                continue;
            }

            var leader = StraceLine.Parse(line);
            if (leader is not { } l)
            {
                result.Error = new TraceError(file, lineNo, "not an strace line (expected '[PID] [TIME] syscall(args) = result'; record with strace -f -tt)");
                return result;
            }

            long? ts;
            try
            {
                // -r prints the time since the previous line: their sum is a clock that starts at 0.
                relative = l.Rel is { } rel ? (relative ?? 0) + StraceLine.Time(rel) : relative;
                ts = l.Ts is { } t ? StraceLine.Time(t) : relative;
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                result.Error = new TraceError(file, lineNo, $"cannot read the time: {ex.Message}");
                return result;
            }

            timed |= ts is not null;
            if (l.Pid.Length > 0)
            {
                result.Pids.Add(l.Pid);
            }

            var rest = l.Rest;
            string call, args, ret;
            if (StraceLine.Resumed(rest) is { Success: true } r)
            {
                if (!pending.Remove(l.Pid, out var start))
                {
                    result.Count("resumed without its start");
                    continue;
                }

                (call, args, ret) = (start.Call, start.Args + r.Groups["args"].Value, r.Groups["ret"].Value);
            }
            else if (StraceLine.Unfinished(rest) is { Success: true } u)
            {
                pending[l.Pid] = (u.Groups["call"].Value, u.Groups["args"].Value);
                result.Count("unfinished (joined with its resumed line)");
                continue;
            }
            else if (StraceLine.Call(rest) is { Success: true } c)
            {
                (call, args, ret) = (c.Groups["call"].Value, c.Groups["args"].Value, c.Groups["ret"].Value);
            }
            else if (Signal(result, rest))
            {
                continue;
            }
            else
            {
                result.Error = new TraceError(file, lineNo, $"not an strace line: no syscall in '{Truncate(rest)}' (expected '[PID] [TIME] syscall(args) = result'; record with strace -f -tt)");
                return result;
            }

            try
            {
                Syscall(result, fds, lineNo, ts ?? 0, call, Syntax.SplitArgs(args), StraceLine.ParseResult(ret));
                if (ts is null && result.Events.Count > 0 && result.Events[^1].Line == lineNo)
                {
                    result.Events[^1] = result.Events[^1] with { TsNs = null };
                }
            }
            catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
            {
                result.Error = new TraceError(file, lineNo, ex.Message);
                return result;
            }
        }

        foreach (var (pid, start) in pending)
        {
            result.Notes.Add($"{start.Call} of {(pid.Length > 0 ? "pid " + pid : "the process")} never resumed (the trace ends inside it)");
        }

        if (!timed)
        {
            result.Notes.Add("no timestamps (record with -tt or -ttt): events keep file order and cannot be put on another file's clock");
        }

        return result;
    }

    /// <summary>Lines that are no call: blank, -k stack frames, strace's own messages.</summary>
    private static bool Other(ImportResult result, string line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            result.Count("blank");
            return true;
        }

        if (line.StartsWith(" > ", StringComparison.Ordinal))
        {
            result.Count("stack frame (-k)");
            return true;
        }

        if (line.StartsWith("strace: ", StringComparison.Ordinal))
        {
            result.Count("strace message");
            return true;
        }

        return false;
    }

    /// <summary>"--- SIGCHLD {...} ---", "+++ exited with 0 +++", "+++ killed by SIGKILL +++".</summary>
    private static bool Signal(ImportResult result, string rest)
    {
        if (rest.StartsWith("---", StringComparison.Ordinal))
        {
            result.Count("signal");
            return true;
        }

        if (rest.StartsWith("+++", StringComparison.Ordinal))
        {
            result.Count(rest.Contains("killed by", StringComparison.Ordinal) ? "killed by a signal" : "exit");
            return true;
        }

        return false;
    }

    private static void Syscall(ImportResult r, Dictionary<ulong, (string Kind, string? Name)> fds, int line, long? ts, string call, List<string> a, StraceLine.Result ret)
    {
        // -yy prints descriptors as N<path>: keep the number, and learn what the path says about it.
        for (var i = 0; i < a.Count; i++)
        {
            a[i] = StraceLine.Plain(a[i]);
            if (StraceLine.Decorated(a[i]) is { } d)
            {
                Learn(fds, d);
                a[i] = d.Number.ToString(CultureInfo.InvariantCulture);
            }
        }

        if (ret.Fd is { } fd)
        {
            Learn(fds, fd);
        }

        var ok = ret.Ok;
        int? errno = ok ? 0 : Errno.TryParse(ret.Errno ?? "", out var e) ? e : null;
        void Add(InputEvent ev, string? key = null) => r.Events.Add(new ImportedEvent(line, ts, ev, key));
        switch (call)
        {
            case "mmap" or "mmap2" when ok && a.Count >= 6:
                Mmap(r, fds, a, Syntax.Number(ret.Value, "mmap result"), Add);
                break;
            case "munmap" when ok:
                Add(new VmaUnmapped(HvaRange.FromSize(new Hva(Syntax.Number(a[0], "munmap address")), Syntax.PageUp(Syntax.Number(a[1], "munmap length")))));
                break;
            case "mprotect" or "pkey_mprotect" when ok:
                Add(new VmaProtectionChanged(HvaRange.FromSize(new Hva(Syntax.Number(a[0], "mprotect address")), Syntax.PageUp(Syntax.Number(a[1], "mprotect length"))), StraceFlags.Prot(a[2]), null));
                break;
            case "madvise" when ok:
                Add(new VmaAdvised(HvaRange.FromSize(new Hva(Syntax.Number(a[0], "madvise address")), Syntax.PageUp(Syntax.Number(a[1], "madvise length"))), StraceFlags.Advice(a[2])));
                break;
            case "memfd_create" when ok:
                var memfd = Syntax.Number(ret.Value, "memfd_create result");
                fds[memfd] = ("memfd", ret.Fd?.Path is { } p && p.StartsWith("/memfd:", StringComparison.Ordinal) ? p : "/memfd:" + StraceLine.Unquote(a[0]));
                r.Count("memfd_create (names the fd for later mmaps)");
                break;
            case "fallocate" when ok && Syntax.TryNumber(a[0], out var gfd) && fds.TryGetValue(gfd, out var gk) && gk.Kind == "gmem":
                Add(new GuestMemfdFallocated((int)gfd, Syntax.Number(a[2], "fallocate offset"), Syntax.Number(a[3], "fallocate length"), StraceFlags.PunchHole(a[1])));
                break;
            case "close" when ok && Syntax.TryNumber(a[0], out var cfd) && fds.Remove(cfd, out var ck):
                if (ck.Kind == "gmem")
                {
                    Add(new GuestMemfdClosed((int)cfd));
                }
                else
                {
                    r.Count("close");
                }

                break;
            case "ioctl" when a.Count >= 2:
                Ioctl(r, fds, line, ts, a, ret, errno, Add);
                break;
            default:
                r.Count(ok ? call : ret.Value == "?" ? call + " (no return)" : call + " (failed)");
                break;
        }
    }

    private static void Mmap(ImportResult r, Dictionary<ulong, (string Kind, string? Name)> fds, List<string> a, ulong start, Action<InputEvent, string?> add)
    {
        var len = Syntax.PageUp(Syntax.Number(a[1], "mmap length"));
        var flags = StraceFlags.Map(a[3]);

        // -1, or its raw forms (0xffffffff, 0xffffffffffffffff), is no descriptor.
        var fd = Syntax.TryNumber(a[4], out var f) && f < int.MaxValue ? f : ulong.MaxValue;
        if (flags.Contains("MAP_FIXED", StringComparison.Ordinal))
        {
            // MAP_FIXED replaces whatever was there (the native format's rule: unmap first).
            add(new VmaUnmapped(HvaRange.FromSize(new Hva(start), len)), null);
        }

        var shared = flags.Contains("MAP_SHARED", StringComparison.Ordinal);
        var hugetlb = flags.Contains("MAP_HUGETLB", StringComparison.Ordinal);
        var kind = fd == ulong.MaxValue || flags.Contains("MAP_ANONYMOUS", StringComparison.Ordinal)
            ? (hugetlb ? BackingKind.Hugetlb : shared ? BackingKind.Shmem : BackingKind.Anon)
            : fds.TryGetValue(fd, out var known) ? known.Kind switch { "gmem" => BackingKind.GuestMemfd, "file" => BackingKind.File, "hugetlb" => BackingKind.Hugetlb, _ => BackingKind.Shmem } : BackingKind.File;
        var path = fds.TryGetValue(fd, out var n) ? n.Name : null;
        var vmFlags = (shared ? VmaFlags.VM_SHARED : VmaFlags.None) | (hugetlb ? VmaFlags.VM_HUGETLB : VmaFlags.None);
        if (fds.TryGetValue(fd, out var mapped) && mapped.Kind != "file")
        {
            r.FdMappings.Add(new FdMapping(fd, start, len, r.Events.Count));
        }

        add(new VmaMapped(HvaRange.FromSize(new Hva(start), len), StraceFlags.Prot(a[2]), vmFlags, null, new Backing(kind, path)), "mmap:" + Hex.Format(start));
    }

    private static void Ioctl(ImportResult r, Dictionary<ulong, (string Kind, string? Name)> fds, int line, long? ts, List<string> a, StraceLine.Result ret, int? errno, Action<InputEvent, string?> add)
    {
        var ok = ret.Ok;
        var cmd = KvmIoctls.Name(a[1]);
        ulong? value = ok && Syntax.TryNumber(ret.Value, out var rv) ? rv : null;
        void Call(string name, bool decoded, string counted = "") => r.Calls.Add(new KvmCall(line, ts ?? 0, name, decoded, decoded ? r.Events.Count - 1 : r.Events.Count, errno, value, counted));
        KvmIoctls.Clues(r, line, cmd, ret.Aux);
        var decodedStruct = a.Count >= 3 && a[2].StartsWith('{');
        switch (cmd)
        {
            case "KVM_CREATE_VM" when ok:
                var type = Syntax.TryNumber(a.ElementAtOrDefault(2) ?? "0", out var t) ? t : 0;
                add(new VmCreated(type switch { 1 => VmType.SwProtected, 4 => VmType.Snp, 5 => VmType.Tdx, _ => VmType.Default }, null), null);
                break;
            case "KVM_SET_USER_MEMORY_REGION" or "KVM_SET_USER_MEMORY_REGION2" when decodedStruct:
            {
                var s = Syntax.Struct(a[2]);
                var slot = Syntax.Number(Field(s, "slot"), "slot");
                var flags = StraceFlags.Memslot(Field(s, "flags"));
                int? gmem = s.TryGetValue("guest_memfd", out var g) && Syntax.TryNumber(StraceLine.Plain(g), out var gv) ? (int)gv : null;
                ulong? gmemOffset = s.TryGetValue("guest_memfd_offset", out var go) && Syntax.TryNumber(StraceLine.Plain(go), out var gov) ? gov : null;
                add(new MemslotSet((int)(slot & 0xffff), (int)(slot >> 16), new Gpa(Syntax.Number(Field(s, "guest_phys_addr"), "guest_phys_addr")),
                    Syntax.Number(Field(s, "memory_size"), "memory_size"), new Hva(Syntax.Number(Field(s, "userspace_addr"), "userspace_addr")),
                    flags, gmem, gmemOffset, errno), null);
                Call(cmd["KVM_".Length..], decoded: true);
                break;
            }

            case "KVM_ENABLE_CAP" when decodedStruct:
            {
                var s = Syntax.Struct(a[2]);
                if (ok && s.TryGetValue("cap", out var cap))
                {
                    add(new CapabilityEnabled(StraceLine.Plain(cap), Domain.ValueList<CapArg>.Empty), null);
                }
                else
                {
                    r.Count("KVM_ENABLE_CAP (failed or undecoded)");
                }

                break;
            }

            case "KVM_SET_USER_MEMORY_REGION" or "KVM_SET_USER_MEMORY_REGION2" or "KVM_CREATE_GUEST_MEMFD" or "KVM_SET_MEMORY_ATTRIBUTES" or "KVM_ENABLE_CAP":
            {
                // What strace did not decode (a raw number, or -e raw=ioctl): name it, and note what a second source must supply.
                if (cmd == "KVM_CREATE_GUEST_MEMFD" && ok && value is { } gfd)
                {
                    fds[gfd] = ("gmem", "guest_memfd");
                }

                var counted = $"{cmd} (payload not decoded by strace{(ok ? "" : ", failed")})";
                r.Count(counted);
                Call(cmd["KVM_".Length..], decoded: false, counted);
                break;
            }

            default:
                r.Count("ioctl " + cmd + (ret.Aux is { } aux && aux.StartsWith("KVM_EXIT", StringComparison.Ordinal) ? " -> " + aux : "") + (ok ? "" : " (" + (ret.Errno ?? "failed") + ")"));
                break;
        }
    }

    private static string Field(Dictionary<string, string> s, string name) => StraceLine.Plain(s.GetValueOrDefault(name, "0"));

    /// <summary>What a -y path says about a descriptor: a guest_memfd, a memfd (by name), or another file.</summary>
    private static void Learn(Dictionary<ulong, (string Kind, string? Name)> fds, Descriptor d)
    {
        if (d.Path is not { } path)
        {
            return;
        }

        if (path.Contains("kvm-gmem", StringComparison.Ordinal))
        {
            fds[d.Number] = ("gmem", "guest_memfd");
        }
        else if (path.StartsWith("/memfd:", StringComparison.Ordinal) || path.StartsWith("/dev/shm/", StringComparison.Ordinal))
        {
            fds[d.Number] = ("memfd", path);
        }
        else if (path.StartsWith('/') && !fds.ContainsKey(d.Number))
        {
            // hugetlbfs is conventionally mounted at /dev/hugepages (or /mnt/huge...).
            fds[d.Number] = (path.Contains("huge", StringComparison.OrdinalIgnoreCase) ? "hugetlb" : "file", path);
        }
    }

    private static string Truncate(string s) => s.Length > 60 ? s[..60] + "..." : s;
}
