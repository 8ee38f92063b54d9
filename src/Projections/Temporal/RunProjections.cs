using System.Text.Json;
using System.Text.Json.Serialization;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Projections.Temporal;

/// <summary>What a stage-2 row holds: a mapping, or a gap that says why there is none.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Stage2RowKind>))]
public enum Stage2RowKind
{
    [JsonStringEnumMemberName("mapped")]
    Mapped,
    [JsonStringEnumMemberName("gap")]
    Gap,
}

/// <summary>A stage-2 row: a mapping (<see cref="Stage2RowKind.Mapped"/>) or why there is none (a gap, with its outcome and cause).</summary>
/// <param name="LastChangeType">the event type of <paramref name="LastChange"/>, as the API names it ("FaultResolved").</param>
/// <param name="Outcome">a gap's reason: a refused fault's outcome name, or "unmapped".</param>
/// <param name="WriteProtectedAt">the seqs of the changes that write-protected the mapping, oldest first.</param>
public sealed record Stage2Data(
    Stage2RowKind Kind,
    ulong? Granule = null,
    [property: JsonConverter(typeof(JsonStringEnumConverter<Stage2MemType>))] Stage2MemType? MemType = null,
    bool? Ipat = null,
    [property: JsonConverter(typeof(RowJson.PermsText))] Perms? Perms = null,
    string? Policy = null,
    long? DecidedAt = null,
    long? InputSeq = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] long LastChange = 0,
    string? LastChangeType = null,
    [property: JsonConverter(typeof(RowJson.Seqs))] ValueList<long>? WriteProtectedAt = null,
    string? Outcome = null,
    long? CauseSeq = null,
    string? CauseType = null,
    string? CauseRule = null,
    string? WriteProtectRule = null)
{
    [JsonIgnore]
    public bool IsMapped => Kind == Stage2RowKind.Mapped;
}

public sealed record MemslotData(
    int Slot,
    int AsId,
    [property: JsonConverter(typeof(RowJson.HexText))] ulong Hva,
    [property: JsonConverter(typeof(RowJson.FlagsText<MemslotFlags>))] MemslotFlags Flags,
    int? GuestMemfd,
    [property: JsonConverter(typeof(RowJson.HexText))] ulong? GuestMemfdOffset,
    long Seq,
    long FlagsSeq);

/// <param name="MapStart">where the whole mmap starts (the row may be a piece of it).</param>
public sealed record VmaData(
    [property: JsonConverter(typeof(RowJson.PermsText))] Perms Prot,
    [property: JsonConverter(typeof(RowJson.FlagsText<VmaFlags>))] VmaFlags Flags,
    [property: JsonConverter(typeof(JsonStringEnumConverter<HostMemType>))] HostMemType? MemType,
    [property: JsonConverter(typeof(RowJson.LowerName<BackingKind>))] BackingKind Backing,
    string? Path,
    [property: JsonConverter(typeof(RowJson.HexText))] ulong MapStart,
    [property: JsonConverter(typeof(RowJson.HexText))] ulong MapSize,
    long Seq,
    long ProtSeq);

public sealed record AttributeData(bool Private);

public sealed record ShareData(bool Shared);

/// <summary>
/// The temporal projections of one run as a pure fold: <see cref="Apply"/> one stored event at a time
/// (inputs and derived), in seq order; the row changes collect in <see cref="Log"/>. The same fold
/// runs inline at append time, in a rebuild, and in tests against an in-memory replay.
/// </summary>
/// <param name="streaming">A rebuild's fold: its log hands over rows as they close and the rows that hold are read from <see cref="Current"/> (ChangeLog).</param>
public sealed class RunProjections(bool streaming = false)
{
    public const string Stage2Name = "stage2";
    public const string VmasName = "vmas";
    public const string AttributesName = "attributes";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly Dictionary<int, TemporalView<MemslotData>> _memslots = [];
    private readonly Dictionary<int, TemporalView<ShareData>> _gmem = [];
    private readonly Dictionary<(int AsId, int Slot), (ulong Lo, ulong Hi, MemslotData Data)> _slots = [];
    private (long Seq, InputEvent Event)? _lastInput;
    private readonly Stage2Cells _cells = new(Ser);

    public TemporalView<Stage2Data> Stage2 { get; } = new(Stage2Name, Stage2Text.Write);

    public TemporalView<VmaData> Vmas { get; } = new(VmasName, Ser);

    public TemporalView<AttributeData> Attributes { get; } = new(AttributesName, Ser);

    public ChangeLog Log { get; private set; } = new(streaming);

    /// <summary>The number of rows that hold now.</summary>
    public int OpenCount => Stage2.Rows.Count + CellViews.Sum(v => v.Rows.Count) + Vmas.Rows.Count + Attributes.Rows.Count + _memslots.Values.Sum(v => v.Rows.Count) + _gmem.Values.Sum(v => v.Rows.Count);

    /// <summary>From here on the log tracks open rows as the inline projection's does (a rebuild's tail, after the rows that hold were stored).</summary>
    public void StopStreaming() => Log = new ChangeLog();

    public long Seq { get; private set; }

    public static string MemslotsName(int asId) => "memslots/" + asId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static string GmemName(int fd) => "gmem/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public TemporalView<MemslotData> Memslots(int asId) => View(_memslots, asId, MemslotsName);

    public TemporalView<ShareData> Gmem(int fd) => View(_gmem, fd, GmemName);

    /// <summary>Every projection this run has (each gets its own checkpoint).</summary>
    public IEnumerable<string> Names() =>
        new[] { Stage2Name, VmasName, AttributesName }.Concat(_memslots.Values.Select(v => v.Projection)).Concat(_gmem.Values.Select(v => v.Projection))
            .Concat(CellViews.Select(v => v.Projection));

    /// <summary>The coarse projection of stage-2 (<see cref="Stage2Cells"/>); none for a run stored before it existed and not rebuilt since.</summary>
    public IReadOnlyList<TemporalView<CellData>> CellViews => _cells.Complete ? _cells.Views : [];

    public IEnumerable<TemporalRow> Current() =>
        Stage2.Current().Concat(Vmas.Current()).Concat(Attributes.Current())
            .Concat(_memslots.Values.SelectMany(v => v.Current()))
            .Concat(_gmem.Values.SelectMany(v => v.Current()))
            .Concat(CellViews.SelectMany(v => v.Current()));

    public void Apply(Recorded r)
    {
        Seq = r.Seq;
        switch (r.Event)
        {
            case VmaMapped v:
                foreach (var (lo, hi) in Placement(v))
                {
                    Vmas.Set(lo, hi, VmaOf(v, r.Seq), r.Seq, Log);
                }

                break;
            case VmaUnmapped v:
                Vmas.Remove(v.Range.Start.Value, v.Range.End.Value, r.Seq, Log);
                break;
            case VmaProtectionChanged p:
                Protect(p, r.Seq);
                break;
            case MemslotDecided d when d.PredictedErrno == 0 && _lastInput?.Event is MemslotSet m:
                Memslot(d, m, r.Seq);
                break;
            case IoctlDecided d when d.PredictedErrno == 0 && _lastInput?.Event is MemoryAttributesSet a:
                Attributes.Set(a.Gpa.Value, a.Gpa.Value + a.Size, new AttributeData(a.Private), r.Seq, Log);
                break;
            case IoctlDecided d when d.PredictedErrno == 0 && _lastInput?.Event is GuestMemfdConverted c:
                Gmem(c.Fd).Set(c.Offset, c.Offset + c.Size, new ShareData(c.To == Shareability.Shared), r.Seq, Log);
                break;
            case FaultResolved f:
                Fault(f, r.Seq);
                break;
            case Stage2Unmapped u:
                foreach (var range in u.Ranges)
                {
                    SetStage2(range.Start.Value, range.End.Value, new Stage2Data(Stage2RowKind.Gap, Outcome: "unmapped", LastChange: r.Seq, LastChangeType: "Stage2Unmapped", CauseSeq: u.CauseSeq, CauseType: CauseType(u.CauseSeq), CauseRule: u.Rule), r.Seq);
                }

                break;
            case Stage2WriteProtected w:
                WriteProtect(w, r.Seq);
                break;
        }

        if (r.Event is InputEvent input)
        {
            _lastInput = (r.Seq, input);
        }
    }

    // The two changes that update rows through a lambda are methods of their own: a lambda in Apply made every
    // call of Apply allocate the closure, whatever event it applied.
    private void Protect(VmaProtectionChanged p, long seq) =>
        Vmas.Update(p.Range.Start.Value, p.Range.End.Value, d => d with { Prot = p.Prot, MemType = p.MemType ?? d.MemType, ProtSeq = seq }, seq, Log);

    private void WriteProtect(Stage2WriteProtected w, long seq)
    {
        foreach (var range in w.Ranges)
        {
            Stage2.Update(range.Start.Value, range.End.Value, d => !d.IsMapped ? d : d with
            {
                Perms = w.KeepsWrite ? d.Perms : d.Perms & ~Perms.W,
                Granule = w.Split ? 4096 : d.Granule,
                LastChange = seq,
                LastChangeType = "Stage2WriteProtected",
                WriteProtectRule = w.Rule,
                WriteProtectedAt = (d.WriteProtectedAt ?? ValueList<long>.Empty).Add(w.CauseSeq),
            }, seq, Log);
        }
    }

    /// <summary>Loads a row that holds now (read back from the store).</summary>
    public void Load(TemporalRow row)
    {
        var (lo, hi) = ((ulong)row.Lo, (ulong)row.Hi);
        switch (row.Projection)
        {
            case Stage2Name:
                var stage2 = Stage2Text.Read(row.Data, row.FromSeq);
                Stage2.Load(lo, hi, row.FromSeq, stage2);
                _cells.LoadStage2(lo, hi, stage2);
                break;
            case var p when Stage2Cells.IsCells(p):
                _cells.Load(row);
                break;
            case VmasName:
                Vmas.Load(lo, hi, row.FromSeq, De<VmaData>(row.Data));
                break;
            case AttributesName:
                Attributes.Load(lo, hi, row.FromSeq, De<AttributeData>(row.Data));
                break;
            case var p when p.StartsWith("memslots/", StringComparison.Ordinal):
                var slot = De<MemslotData>(row.Data);
                Memslots(slot.AsId).Load(lo, hi, row.FromSeq, slot);
                _slots[(slot.AsId, slot.Slot)] = (lo, hi, slot);
                break;
            case var p when p.StartsWith("gmem/", StringComparison.Ordinal):
                Gmem(int.Parse(p["gmem/".Length..], System.Globalization.CultureInfo.InvariantCulture)).Load(lo, hi, row.FromSeq, De<ShareData>(row.Data));
                break;
        }

        Seq = Math.Max(Seq, row.FromSeq);
    }

    public static T De<T>(string json) => JsonSerializer.Deserialize<T>(json, Json)!;

    private static string Ser<T>(T data, long fromSeq) => JsonSerializer.Serialize(data, Json);

    /// <summary>
    /// Applies a fault decision: a mapping sets its row, a refusal marks the page when nothing is mapped
    /// there. A re-fault the engine decided <see cref="FaultOutcome.Kept"/> (the walker left the leaf,
    /// rules arm64.stage2_map_walker_try_leaf.same_leaf and x86.mmu_set_spte.spurious) changes nothing.
    /// </summary>
    private void Fault(FaultResolved f, long seq)
    {
        if (f.Outcome is FaultOutcome.Mapped or FaultOutcome.Relaxed && f.Mapping is { } m)
        {
            SetStage2(m.Gpa.Value, m.Gpa.Value + m.Size, new Stage2Data(
                Stage2RowKind.Mapped, m.Size, m.MemType, m.Ipat, m.Perms, f.Policy, seq, f.InputSeq, seq, "FaultResolved"), seq);
            return;
        }

        if (f.Outcome is FaultOutcome.Young or FaultOutcome.Kept || _lastInput?.Event is not GuestFaulted g)
        {
            return;
        }

        var page = g.Gpa.AlignDown(4096).Value;
        if (Stage2.TryFind(page, out var cur) && cur.Value.Data.IsMapped)
        {
            return;
        }

        SetStage2(page, page + 4096, new Stage2Data(Stage2RowKind.Gap, Outcome: FaultOutcomes.Name(f.Outcome), LastChange: seq, LastChangeType: "FaultResolved", CauseSeq: f.InputSeq, CauseType: "GuestFaulted"), seq);
    }

    /// <summary>
    /// Sets stage-2 [lo, hi) and keeps its cells: the kinds inside the range are uncounted before and
    /// counted after (rows trimmed outside it keep their data). A write-protection changes no kind, so
    /// it needs no such care.
    /// </summary>
    private void SetStage2(ulong lo, ulong hi, Stage2Data data, long seq)
    {
        var cells = _cells.Complete;
        if (cells)
        {
            _cells.Uncount(Stage2.Rows, lo, hi);
        }

        Stage2.Set(lo, hi, data, seq, Log);
        if (cells)
        {
            _cells.CountSet(lo, hi, data);
            _cells.Flush(seq, Log);
        }
    }

    private void Memslot(MemslotDecided d, MemslotSet m, long seq)
    {
        var key = (m.AsId, m.Slot);
        _slots.TryGetValue(key, out var old);
        var view = Memslots(m.AsId);
        switch (d.Change)
        {
            case SlotChange.Create:
            {
                var data = new MemslotData(m.Slot, m.AsId, m.Hva.Value, m.Flags, m.GuestMemfd, m.GuestMemfdOffset, d.InputSeq, d.InputSeq);
                view.Set(m.Gpa.Value, m.Gpa.Value + m.Size, data, seq, Log);
                _slots[key] = (m.Gpa.Value, m.Gpa.Value + m.Size, data);
                break;
            }

            case SlotChange.Delete when old.Data is not null:
                view.Remove(old.Lo, old.Hi, seq, Log);
                _slots.Remove(key);
                break;
            case SlotChange.Move when old.Data is not null:
            {
                view.Remove(old.Lo, old.Hi, seq, Log);
                var data = old.Data with { Seq = d.InputSeq };
                view.Set(m.Gpa.Value, m.Gpa.Value + m.Size, data, seq, Log);
                _slots[key] = (m.Gpa.Value, m.Gpa.Value + m.Size, data);
                break;
            }

            case SlotChange.FlagsOnly when old.Data is not null:
            {
                var data = old.Data with { Flags = m.Flags, FlagsSeq = d.InputSeq };
                view.Set(old.Lo, old.Hi, data, seq, Log);
                _slots[key] = (old.Lo, old.Hi, data);
                break;
            }
        }
    }

    /// <summary>The engine's placement rule for overlapping VMAs (the smaller mapping holds).</summary>
    private List<(ulong Lo, ulong Hi)> Placement(VmaMapped v) =>
        VmaPlacement.Pieces(Vmas.Rows, x => x.Data.MapSize, v);

    private static VmaData VmaOf(VmaMapped v, long seq) => new(v.Prot, v.Flags, v.MemType, v.Backing.Kind, v.Backing.Path, v.Range.Start.Value, v.Range.Size, seq, seq);

    private string? CauseType(long causeSeq) => _lastInput is { } i && i.Seq == causeSeq ? i.Event.GetType().Name : null;

    private static TemporalView<TData> View<TData>(Dictionary<int, TemporalView<TData>> views, int key, Func<int, string> name)
        where TData : notnull
    {
        if (!views.TryGetValue(key, out var v))
        {
            v = new TemporalView<TData>(name(key), Ser);
            views[key] = v;
        }

        return v;
    }
}
