using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// strace text (-f, -tt or -ttt, optionally -yy): mmap/munmap/mprotect/madvise, memfd_create,
/// fallocate and close become VMA and guest_memfd events; KVM_CREATE_VM and the decoded
/// KVM_SET_USER_MEMORY_REGION(2) and KVM_ENABLE_CAP become VM, memslot and capability events.
/// Undecoded _IOC forms and every other line are counted by kind.
/// </summary>
public static partial class StraceImporter
{
    [GeneratedRegex(@"^(?:\[pid\s+)?(?<pid>\d+)?\]?\s*(?<ts>\d{1,2}:\d{2}:\d{2}\.\d+|\d{9,}\.\d+)\s+(?<rest>.*)$")]
    private static partial Regex LineRx();

    [GeneratedRegex(@"^(?<call>\w+)\((?<args>.*)\)\s+=\s+(?<ret>.+)$")]
    private static partial Regex CallRx();

    [GeneratedRegex(@"^(?<call>\w+)\((?<args>.*?)\s*<unfinished \.\.\.>$")]
    private static partial Regex UnfinishedRx();

    [GeneratedRegex(@"^<\.\.\. (?<call>\w+) resumed>\s*(?<args>.*)\)\s+=\s+(?<ret>.+)$")]
    private static partial Regex ResumedRx();

    public static bool Looks(string line) => LineRx().Match(line) is { Success: true } m && (CallRx().IsMatch(m.Groups["rest"].Value) || m.Groups["rest"].Value.StartsWith("<...", StringComparison.Ordinal));

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "strace");
        var fds = new Dictionary<ulong, (string Kind, string? Name)>();
        var pending = new Dictionary<string, (string Call, string Args)>(StringComparer.Ordinal);
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            if (string.IsNullOrWhiteSpace(line))
            {
                result.Count("blank");
                continue;
            }

            var m = LineRx().Match(line);
            if (!m.Success)
            {
                if (line.Contains("+++", StringComparison.Ordinal) || line.Contains("---", StringComparison.Ordinal))
                {
                    result.Count("signal or exit");
                    continue;
                }

                result.Error = new TraceError(file, lineNo, "not an strace line (expected 'PID HH:MM:SS.us syscall(args) = result'; record with strace -f -tt)");
                return result;
            }

            var ts = Time(m.Groups["ts"].Value);
            var pid = m.Groups["pid"].Value;
            var rest = m.Groups["rest"].Value;
            string call, args, ret;
            if (UnfinishedRx().Match(rest) is { Success: true } u)
            {
                pending[pid] = (u.Groups["call"].Value, u.Groups["args"].Value);
                result.Count("unfinished (joined with its resumed line)");
                continue;
            }

            if (ResumedRx().Match(rest) is { Success: true } r)
            {
                if (!pending.Remove(pid, out var start))
                {
                    result.Count("resumed without its start");
                    continue;
                }

                (call, args, ret) = (start.Call, start.Args + r.Groups["args"].Value, r.Groups["ret"].Value);
            }
            else if (CallRx().Match(rest) is { Success: true } c)
            {
                (call, args, ret) = (c.Groups["call"].Value, c.Groups["args"].Value, c.Groups["ret"].Value);
            }
            else if (rest.StartsWith("+++", StringComparison.Ordinal) || rest.StartsWith("---", StringComparison.Ordinal))
            {
                result.Count("signal or exit");
                continue;
            }
            else
            {
                result.Error = new TraceError(file, lineNo, $"cannot read the syscall in '{Truncate(rest)}'");
                return result;
            }

            try
            {
                Syscall(result, fds, lineNo, ts, call, Syntax.SplitArgs(args), ret.Trim());
            }
            catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
            {
                result.Error = new TraceError(file, lineNo, ex.Message);
                return result;
            }
        }

        return result;
    }

    private static void Syscall(ImportResult r, Dictionary<ulong, (string Kind, string? Name)> fds, int line, long ts, string call, List<string> a, string ret)
    {
        // -yy prints descriptors as N<path>: keep the number, and learn what the path says about it.
        for (var i = 0; i < a.Count; i++)
        {
            a[i] = FdPath(a[i], fds);
        }

        ret = FdPath(ret.Split(' ')[0], fds) + ret[ret.Split(' ')[0].Length..];
        var ok = !ret.StartsWith("-1", StringComparison.Ordinal) && !ret.StartsWith('?');
        int? errno = ok ? 0 : Errno.TryParse(ret.Split(' ').ElementAtOrDefault(1) ?? "", out var e) ? e : null;
        void Add(InputEvent ev, string? key = null) => r.Events.Add(new ImportedEvent(line, ts, ev, key));
        switch (call)
        {
            case "mmap" when ok && a.Count >= 6:
            {
                var start = Syntax.Number(ret.Split(' ')[0], "mmap result");
                var len = Syntax.PageUp(Syntax.Number(a[1], "mmap length"));
                var flags = a[3];
                var fd = Syntax.TryNumber(a[4], out var f) ? f : ulong.MaxValue;
                if (flags.Contains("MAP_FIXED", StringComparison.Ordinal))
                {
                    // MAP_FIXED replaces whatever was there (the native format's rule: unmap first).
                    Add(new VmaUnmapped(HvaRange.FromSize(new Hva(start), len)));
                }

                var shared = flags.Contains("MAP_SHARED", StringComparison.Ordinal);
                var hugetlb = flags.Contains("MAP_HUGETLB", StringComparison.Ordinal);
                var kind = fd == ulong.MaxValue || flags.Contains("MAP_ANONYMOUS", StringComparison.Ordinal)
                    ? (hugetlb ? BackingKind.Hugetlb : shared ? BackingKind.Shmem : BackingKind.Anon)
                    : fds.TryGetValue(fd, out var known) ? (known.Kind == "gmem" ? BackingKind.GuestMemfd : BackingKind.Shmem) : BackingKind.File;
                var path = fds.TryGetValue(fd, out var n) ? n.Name : null;
                var vmFlags = (shared ? VmaFlags.VM_SHARED : VmaFlags.None) | (hugetlb ? VmaFlags.VM_HUGETLB : VmaFlags.None);
                if (fds.ContainsKey(fd))
                {
                    r.FdMappings.Add(new FdMapping(fd, start, len, r.Events.Count));
                }

                Add(new VmaMapped(HvaRange.FromSize(new Hva(start), len), Prot(a[2]), vmFlags, null, new Backing(kind, path)), "mmap:" + Hex.Format(start));
                break;
            }

            case "munmap" when ok:
                Add(new VmaUnmapped(HvaRange.FromSize(new Hva(Syntax.Number(a[0], "munmap address")), Syntax.PageUp(Syntax.Number(a[1], "munmap length")))));
                break;
            case "mprotect" when ok:
                Add(new VmaProtectionChanged(HvaRange.FromSize(new Hva(Syntax.Number(a[0], "mprotect address")), Syntax.PageUp(Syntax.Number(a[1], "mprotect length"))), Prot(a[2]), null));
                break;
            case "madvise" when ok:
                Add(new VmaAdvised(HvaRange.FromSize(new Hva(Syntax.Number(a[0], "madvise address")), Syntax.PageUp(Syntax.Number(a[1], "madvise length"))), a[2]));
                break;
            case "memfd_create" when ok:
                fds[Syntax.Number(ret.Split(' ')[0], "memfd_create result")] = ("memfd", "/memfd:" + a[0].Trim('"'));
                r.Count("memfd_create (names the fd for later mmaps)");
                break;
            case "fallocate" when ok && Syntax.TryNumber(a[0], out var gfd) && fds.TryGetValue(gfd, out var gk) && gk.Kind == "gmem":
                Add(new GuestMemfdFallocated((int)gfd, Syntax.Number(a[2], "fallocate offset"), Syntax.Number(a[3], "fallocate length"), a[1].Contains("PUNCH_HOLE", StringComparison.Ordinal)));
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
                Ioctl(r, fds, line, ts, a, ret, ok, errno, Add);
                break;
            default:
                r.Count(ok ? call : call + " (failed)");
                break;
        }
    }

    private static void Ioctl(ImportResult r, Dictionary<ulong, (string Kind, string? Name)> fds, int line, long ts, List<string> a, string ret, bool ok, int? errno, Action<InputEvent, string?> add)
    {
        var cmd = a[1];
        ulong? value = ok && Syntax.TryNumber(ret.Split(' ')[0], out var rv) ? rv : null;
        void Call(string name, bool decoded, string counted = "") => r.Calls.Add(new KvmCall(line, ts, name, decoded, decoded ? r.Events.Count - 1 : r.Events.Count, errno, value, counted));
        switch (cmd)
        {
            case "KVM_CREATE_VM" when ok:
                var type = Syntax.TryNumber(a.ElementAtOrDefault(2) ?? "0", out var t) ? t : 0;
                add(new VmCreated(type switch { 1 => VmType.SwProtected, 4 => VmType.Snp, 5 => VmType.Tdx, _ => VmType.Default }, null), null);
                break;
            case "KVM_SET_USER_MEMORY_REGION" or "KVM_SET_USER_MEMORY_REGION2" when a.Count >= 3 && a[2].StartsWith('{'):
            {
                var s = Syntax.Struct(a[2]);
                var slot = Syntax.Number(s.GetValueOrDefault("slot", "0"), "slot");
                var flags = MemslotFlagsOf(s.GetValueOrDefault("flags", "0"));
                int? gmem = s.TryGetValue("guest_memfd", out var g) && Syntax.TryNumber(g, out var gv) ? (int)gv : null;
                ulong? gmemOffset = s.TryGetValue("guest_memfd_offset", out var go) && Syntax.TryNumber(go, out var gov) ? gov : null;
                add(new MemslotSet((int)(slot & 0xffff), (int)(slot >> 16), new Gpa(Syntax.Number(s.GetValueOrDefault("guest_phys_addr", "0"), "guest_phys_addr")),
                    Syntax.Number(s.GetValueOrDefault("memory_size", "0"), "memory_size"), new Hva(Syntax.Number(s.GetValueOrDefault("userspace_addr", "0"), "userspace_addr")),
                    flags, gmem, gmemOffset, errno), null);
                Call(cmd["KVM_".Length..], decoded: true);
                break;
            }

            case "KVM_ENABLE_CAP" when a.Count >= 3 && a[2].StartsWith('{'):
            {
                var s = Syntax.Struct(a[2]);
                if (ok && s.TryGetValue("cap", out var cap))
                {
                    add(new CapabilityEnabled(cap, Domain.ValueList<CapArg>.Empty), null);
                }
                else
                {
                    r.Count("KVM_ENABLE_CAP (failed or undecoded)");
                }

                break;
            }

            default:
                if (cmd.StartsWith("_IOC(", StringComparison.Ordinal))
                {
                    // What strace cannot decode: name it, and note what a second source must supply.
                    var name = UndecodedName(cmd);
                    if (name == "KVM_CREATE_GUEST_MEMFD" && ok && Syntax.TryNumber(ret.Split(' ')[0], out var gfd))
                    {
                        fds[gfd] = ("gmem", "guest_memfd");
                    }

                    var counted = $"{name} (payload not decoded by strace{(ok ? "" : ", failed")})";
                    r.Count(counted);
                    if (name.StartsWith("KVM_", StringComparison.Ordinal))
                    {
                        Call(name["KVM_".Length..], decoded: false, counted);
                    }
                }
                else
                {
                    r.Count("ioctl " + cmd + (ok ? "" : " (" + (ret.Split(' ').ElementAtOrDefault(1) ?? "failed") + ")"));
                }

                break;
        }
    }

    /// <summary>"6&lt;anon_inode:[kvm-gmem]&gt;" -> "6", noting fd 6 as a guest_memfd (or a memfd, by its path).</summary>
    private static string FdPath(string arg, Dictionary<ulong, (string Kind, string? Name)> fds)
    {
        var lt = arg.IndexOf('<', StringComparison.Ordinal);
        if (lt <= 0 || !arg.EndsWith('>') || !ulong.TryParse(arg.AsSpan(0, lt), System.Globalization.NumberStyles.None, CultureInfo.InvariantCulture, out var fd))
        {
            return arg;
        }

        var path = arg[(lt + 1)..^1];
        if (path.Contains("kvm-gmem", StringComparison.Ordinal))
        {
            fds[fd] = ("gmem", "guest_memfd");
        }
        else if (path.StartsWith("/memfd:", StringComparison.Ordinal) && !fds.ContainsKey(fd))
        {
            fds[fd] = ("memfd", path.Replace(" (deleted)", "", StringComparison.Ordinal));
        }

        return arg[..lt];
    }

    /// <summary>KVM ioctls strace prints as _IOC(dir, 0xae, nr, size).</summary>
    private static string UndecodedName(string ioc)
    {
        var parts = Syntax.SplitArgs(ioc[5..^1]);
        var nr = parts.ElementAtOrDefault(2);
        return nr switch
        {
            "0x49" => "KVM_SET_USER_MEMORY_REGION2",
            "0xd4" => "KVM_CREATE_GUEST_MEMFD",
            "0xd2" => "KVM_SET_MEMORY_ATTRIBUTES",
            "0xa3" => "KVM_ENABLE_CAP",
            _ => $"ioctl {ioc}",
        };
    }

    private static MemslotFlags MemslotFlagsOf(string s)
    {
        if (Syntax.TryNumber(s, out var n))
        {
            return (MemslotFlags)(int)(n & 0x7);
        }

        var flags = MemslotFlags.None;
        foreach (var name in s.Split('|', StringSplitOptions.TrimEntries))
        {
            flags |= Enum.TryParse<MemslotFlags>(name, out var f) ? f : MemslotFlags.None;
        }

        return flags;
    }

    private static Perms Prot(string s) =>
        (s.Contains("PROT_READ", StringComparison.Ordinal) ? Perms.R : 0) | (s.Contains("PROT_WRITE", StringComparison.Ordinal) ? Perms.W : 0) | (s.Contains("PROT_EXEC", StringComparison.Ordinal) ? Perms.X : 0);

    /// <summary>-tt: time of day in ns; -ttt: ns since the epoch.</summary>
    private static long Time(string s)
    {
        if (s.Contains(':', StringComparison.Ordinal))
        {
            var p = s.Split(':');
            var seconds = decimal.Parse(p[2], CultureInfo.InvariantCulture);
            return (long)(((int.Parse(p[0], CultureInfo.InvariantCulture) * 3600) + (int.Parse(p[1], CultureInfo.InvariantCulture) * 60) + seconds) * 1_000_000_000m);
        }

        return (long)(decimal.Parse(s, CultureInfo.InvariantCulture) * 1_000_000_000m);
    }

    private static string Truncate(string s) => s.Length > 60 ? s[..60] + "..." : s;
}
