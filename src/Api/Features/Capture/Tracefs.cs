namespace Audit.Api.Features.Capture;

/// <summary>
/// The tracing state a capture changes, saved first and put back afterwards whatever happens: the
/// enabled events (set_event), the traced pids, the clock, the buffer size, event-fork and tracing_on.
/// </summary>
public sealed class Tracefs
{
    public const string Root = "/sys/kernel/tracing";

    private readonly string root;
    private readonly Dictionary<string, string> saved = new(StringComparer.Ordinal);
    private bool mounted;

    private Tracefs(string root) => this.root = root;

    /// <summary>The events a capture enables: the kvm and kvmmmu systems, and mmap's exit to align strace's clock.</summary>
    public static readonly string[] Events = ["kvm:*", "kvmmmu:*", "syscalls:sys_exit_mmap"];

    /// <summary>Opens tracefs, mounting it when it is not (and unmounting it again on restore).</summary>
    public static Tracefs Open(string root = Root)
    {
        var t = new Tracefs(root);
        if (!File.Exists(Path.Combine(root, "tracing_on")))
        {
            Run("mount", "-t", "tracefs", "nodev", root);
            t.mounted = File.Exists(Path.Combine(root, "tracing_on")) ? true : throw new IOException($"tracefs is not mounted at {root} and mounting it failed");
        }

        return t;
    }

    public void Save()
    {
        foreach (var f in new[] { "tracing_on", "trace_clock", "buffer_size_kb", "set_event", "set_event_pid", "options/event-fork" })
        {
            var path = Path.Combine(root, f);
            if (File.Exists(path))
            {
                saved[f] = File.ReadAllText(path);
            }
        }
    }

    /// <summary>Clears the buffer and enables the capture's events on the mono clock, for <paramref name="pid"/> and its children.</summary>
    public void Configure()
    {
        Write("tracing_on", "0");
        Write("trace", "");
        Write("buffer_size_kb", "16384");
        Write("trace_clock", "mono");
        Write("set_event", "");
        foreach (var e in Events)
        {
            if (Directory.Exists(Path.Combine(root, "events", e.Split(':')[0])))
            {
                Append("set_event", e);
            }
        }

        if (File.Exists(Path.Combine(root, "options/event-fork")))
        {
            Write("options/event-fork", "1");
        }
    }

    public void Start(int pid)
    {
        Write("set_event_pid", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Write("tracing_on", "1");
    }

    public void Stop() => Write("tracing_on", "0");

    /// <summary>The buffer as text (the plain rendering).</summary>
    public void CopyTrace(string to) => File.Copy(Path.Combine(root, "trace"), to, overwrite: true);

    /// <summary>Puts back what <see cref="Save"/> read; returns what could not be restored.</summary>
    public List<string> Restore()
    {
        var failed = new List<string>();
        void Try(string what, Action a)
        {
            try
            {
                a();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                failed.Add($"{what}: {ex.Message}");
            }
        }

        Try("tracing_on", () => Write("tracing_on", "0"));
        Try("trace", () => Write("trace", ""));
        Try("set_event", () =>
        {
            Write("set_event", "");
            foreach (var e in saved.GetValueOrDefault("set_event", "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                Append("set_event", e);
            }
        });
        Try("set_event_pid", () =>
        {
            Write("set_event_pid", "");
            foreach (var p in saved.GetValueOrDefault("set_event_pid", "").Split((char[])['\n', ' '], StringSplitOptions.RemoveEmptyEntries))
            {
                Append("set_event_pid", p);
            }
        });
        if (saved.TryGetValue("trace_clock", out var clock) && clock.IndexOf('[') is var a and >= 0 && clock.IndexOf(']') is var b && b > a)
        {
            Try("trace_clock", () => Write("trace_clock", clock[(a + 1)..b]));
        }

        foreach (var f in new[] { "buffer_size_kb", "options/event-fork", "tracing_on" })
        {
            if (saved.TryGetValue(f, out var v))
            {
                Try(f, () => Write(f, v.Trim().Split(' ')[0]));
            }
        }

        if (mounted)
        {
            Try("umount", () => Run("umount", root));
        }

        return failed;
    }

    public string Describe() => !File.Exists(Path.Combine(root, "set_event")) ? $"tracefs unmounted from {root} again, as it was" :
        $"set_event=[{string.Join(' ', File.ReadAllLines(Path.Combine(root, "set_event")))}] clock={File.ReadAllText(Path.Combine(root, "trace_clock")).Trim()} tracing_on={File.ReadAllText(Path.Combine(root, "tracing_on")).Trim()}";

    /// <summary>Opening with truncation clears a list file (set_event, set_event_pid); an empty value writes nothing more.</summary>
    private void Write(string file, string value) => File.WriteAllText(Path.Combine(root, file), value.Length == 0 ? "" : value + "\n");

    private void Append(string file, string value) => File.AppendAllText(Path.Combine(root, file), value + "\n");

    private static void Run(string file, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.WaitForExit();
    }
}
