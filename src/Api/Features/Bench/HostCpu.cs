using System.Globalization;

namespace Audit.Api.Features.Bench;

/// <summary>
/// The whole host's busy CPU time (every process: ours and PostgreSQL's), from /proc/stat. With it a
/// closed loop of writers gets its floor: N writers that each wait for their append cannot average less
/// than N x (CPU time per append) / CPUs, whatever order the appends are served in (Little's law).
/// </summary>
public readonly record struct HostCpu(long BusyTicks, long AllTicks, TimeSpan Ours)
{
    // USER_HZ: /proc/stat counts in hundredths of a second on every Linux architecture .NET runs on.
    private const double MsPerTick = 10;

    /// <summary>Now, or null where there is no /proc/stat.</summary>
    public static HostCpu? Read()
    {
        try
        {
            var line = File.ReadLines("/proc/stat").FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
            if (line is null)
            {
                return null;
            }

            // user nice system idle iowait irq softirq steal: idle and iowait are the not-busy ones.
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            var all = f.Sum();
            using var self = System.Diagnostics.Process.GetCurrentProcess();
            return new HostCpu(all - f[3] - f[4], all, self.TotalProcessorTime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>What the host did between two readings: how busy its CPUs were, and the CPU time per operation.</summary>
    public static string Describe(HostCpu? before, HostCpu? after, int operations, int writers, double meanMs)
    {
        if (before is not { } b || after is not { } a || operations == 0 || a.AllTicks <= b.AllTicks)
        {
            return "host CPU time not known here";
        }

        var busyMs = (a.BusyTicks - b.BusyTicks) * MsPerTick;
        var perOperation = busyMs / operations;
        var oursPerOperation = (a.Ours - b.Ours).TotalMilliseconds / operations;
        var cpus = Environment.ProcessorCount;
        var floor = writers * perOperation / cpus;
        return FormattableString.Invariant(
            $"the host's {cpus} CPUs were {100.0 * (a.BusyTicks - b.BusyTicks) / (a.AllTicks - b.AllTicks):0}% busy, {perOperation:0.0} ms of CPU per append ({oursPerOperation:0.0} in this process, {perOperation - oursPerOperation:0.0} in PostgreSQL and the rest), so {writers} writers average at least {writers} x {perOperation:0.0} / {cpus} = {floor:0.0} ms (mean {meanMs:0.0} ms)");
    }
}
