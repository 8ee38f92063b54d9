using System.Text.RegularExpressions;

namespace Audit.Api.Import;

/// <summary>
/// perf script text of the kvm and kvmmmu tracepoints ("COMM PID [CPU] TS: group:event: message"). The
/// events are read as tracefs text is (<see cref="FtraceImporter"/>); a "[FAILED TO PARSE]" line, where
/// perf lacked the event's format, is read from the raw name=value fields it prints instead.
/// </summary>
public static partial class PerfImporter
{
    [GeneratedRegex(@"^\s*(?<task>\S.*?)\s+(?<pid>\d+)(?:/(?<tid>\d+))?\s+\[(?<cpu>\d+)\]\s+(?<ts>\d+\.\d+):\s+(?:\d+\s+)?(?<body>[a-z_0-9]+:[a-z_0-9]+:.*)$")]
    private static partial Regex LineRx();

    public static bool Looks(string line) => LineRx().IsMatch(line);

    public static ImportResult Read(string file, TextReader reader) =>
        new FtraceImporter.Reader(new ImportResult(file, "perf")).Run(reader, LineRx(), "not a perf script line (expected 'COMM PID [CPU] TIMESTAMP: group:event: ...')");
}
