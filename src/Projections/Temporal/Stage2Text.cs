using System.Text.Json;

namespace Audit.Projections.Temporal;

/// <summary>
/// A stage-2 row's data as stored: the fields its row or its own other fields already say are left out
/// (ADR 0015). A fault's mapping opens its row at the seq that decided it, from the input just before,
/// so on most rows "lastChange", "inputSeq" and "lastChangeType" repeated from_seq, decidedAt - 1 and
/// what the row's kind implies: 69 of a mapped row's 182 characters. Reading puts them back, so every
/// reader sees the whole record whatever age the row is (rows written whole read as they are).
/// </summary>
public static class Stage2Text
{
    /// <summary>The data of a row opened at <paramref name="fromSeq"/>, without what the row implies.</summary>
    public static string Write(Stage2Data data, long fromSeq) =>
        JsonSerializer.Serialize(data with
        {
            InputSeq = data.InputSeq == data.DecidedAt - 1 ? null : data.InputSeq,
            LastChange = data.LastChange == fromSeq ? 0 : data.LastChange,
            LastChangeType = data.LastChangeType == ImpliedChangeType(data) ? null : data.LastChangeType,
        }, RunProjections.Json);

    /// <summary>The whole data of a row opened at <paramref name="fromSeq"/>, stored in either form.</summary>
    public static Stage2Data Read(string json, long fromSeq)
    {
        var d = RunProjections.De<Stage2Data>(json);
        return d with
        {
            InputSeq = d.InputSeq ?? d.DecidedAt - 1,
            LastChange = d.LastChange == 0 ? fromSeq : d.LastChange,
            LastChangeType = d.LastChangeType ?? ImpliedChangeType(d),
        };
    }

    /// <summary>
    /// The event that last changed a row, as its other fields imply it: a mapping was last changed by its
    /// fault unless it was write-protected since; a gap by the unmap that made it, or else by a refused fault.
    /// </summary>
    private static string ImpliedChangeType(Stage2Data d) =>
        d.IsMapped
            ? d.WriteProtectedAt is { Count: > 0 } ? "Stage2WriteProtected" : "FaultResolved"
            : d.Outcome == "unmapped" ? "Stage2Unmapped" : "FaultResolved";
}
