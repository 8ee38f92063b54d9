using System.Text.RegularExpressions;

namespace Audit.Api.Import;

/// <summary>
/// perf script text of the kvm and kvmmmu tracepoints ("COMM PID [CPU] TS: group:event: message"). The
/// events are read as tracefs text is (<see cref="FtraceImporter"/>); a "[FAILED TO PARSE]" line, where
/// perf lacked the event's format, is read from the raw name=value fields it prints instead. `perf script -F`
/// may leave out the comm, pid/tid, cpu or time (events without a time keep the time before them); the
/// "# ========" header of --header gives the host's release, arch and cpuid.
/// </summary>
public static partial class PerfImporter
{
    [GeneratedRegex(@"^\s*(?:(?<task>\S.*?)\s+)??(?:(?<pid>\d+)(?:/(?<tid>\d+))?\s+)?(?:\[(?<cpu>\d+)\]\s+)?(?:(?<ts>\d+\.\d+):\s+)?(?:\d+\s+)?(?<body>[a-z_][a-z_0-9]*:[a-z_][a-z_0-9]*:(?:\s.*)?)$")]
    private static partial Regex LineRx();

    public static bool Looks(string line) => LineRx().IsMatch(line);

    public static ImportResult Read(string file, TextReader reader) =>
        new FtraceImporter.Reader(new ImportResult(file, "perf")).Run(reader, [LineRx()], "not a perf script line (expected 'COMM PID [CPU] TIMESTAMP: group:event: ...')");
}
