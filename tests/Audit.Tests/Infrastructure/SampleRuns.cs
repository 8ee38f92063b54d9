using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Tests.Infrastructure;

/// <summary>The bundled NDJSON runs under samples/, read as an ingest would.</summary>
public static class SampleRuns
{
    public static TheoryData<string> Files() => new(Directory.GetFiles(Paths.Samples, "*.ndjson").Select(Path.GetFileName)!);

    public static List<TraceEvent> Traced(string file)
    {
        var path = Path.Combine(Paths.Samples, file);
        using var stream = File.OpenRead(path);
        var r = NdjsonTraceReader.Read(path, stream);
        Assert.Null(r.Error);
        return [.. r.Events];
    }

    public static List<InputEvent> Inputs(string file) => Traced(file).Select(e => e.Event).ToList();
}
