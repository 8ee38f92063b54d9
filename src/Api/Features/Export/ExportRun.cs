using System.Text;
using System.Text.Json;
using Audit.Api.Features.Shared;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Export;

/// <summary>Write a run: ndjson (its inputs; re-importing gives identical decisions) or perfetto (Chrome trace-event JSON).</summary>
public sealed record ExportRun(string Run, string Format) : IRequest<QueryResult<ExportedRun>>;

public sealed record ExportedRun(string ContentType, string FileName, string Content);

public sealed class ExportRunHandler(EventStore store) : IRequestHandler<ExportRun, QueryResult<ExportedRun>>
{
    public async Task<QueryResult<ExportedRun>> Handle(ExportRun request, CancellationToken cancellationToken)
    {
        if (request.Format is not ("ndjson" or "perfetto"))
        {
            return QueryResult<ExportedRun>.Bad($"--format '{request.Format}' is not ndjson or perfetto");
        }

        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<ExportedRun>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var events = new List<StoredEvent>();
        await foreach (var e in store.ReadAsync(request.Run, ct: cancellationToken))
        {
            events.Add(e);
        }

        return QueryResult<ExportedRun>.Ok(request.Format == "ndjson"
            ? new ExportedRun("application/x-ndjson", request.Run + ".ndjson", Ndjson(run, events))
            : new ExportedRun("application/json", request.Run + ".perfetto.json", Perfetto.Build(run, events)));
    }

    private static string Ndjson(RunSummary run, List<StoredEvent> events)
    {
        var sb = new StringBuilder();
        sb.Append("# run ").Append(run.RunId).Append(", exported by audit; recorded under ").Append(run.Policy ?? "?").Append('\n');
        foreach (var e in events.Where(e => e.Event is InputEvent))
        {
            sb.Append(EventSerializer.ToTraceLine(e.Type, e.TsNs, Encoding.UTF8.GetBytes(e.Payload))).Append('\n');
        }

        return sb.ToString();
    }
}

/// <summary>
/// Chrome trace-event JSON that ui.perfetto.dev opens: one track (thread) per memslot, stage-2
/// mappings as async slices named and coloured by memory type, faults, unmaps and exits as instants,
/// the why-text in args. Events without a time are placed 1 us apart by seq.
/// </summary>
public static class Perfetto
{
    public static string Build(RunSummary run, IReadOnlyList<StoredEvent> events)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
        {
            var t0 = events.Select(e => e.TsNs).FirstOrDefault(t => t is not null) ?? 0;
            double Us(StoredEvent e) => e.TsNs is { } ts ? (ts - t0) / 1000.0 : e.Seq;
            var inputs = new Dictionary<long, StoredEvent>();
            var slots = new List<MemslotSet>();
            var open = new Dictionary<ulong, (long Id, int Tid, string Name)>();
            long nextId = 1;

            w.WriteStartObject();
            w.WriteString("displayTimeUnit", "ns");
            w.WriteStartArray("traceEvents");
            Meta(w, "process_name", 1, 0, $"run {run.RunId} ({run.Policy})");
            Meta(w, "thread_name", 1, 0, "vm");
            foreach (var e in events)
            {
                switch (e.Event)
                {
                    case InputEvent i:
                        inputs[e.Seq] = e;
                        if (i is MemslotSet m && slots.All(s => s.Slot != m.Slot || s.AsId != m.AsId))
                        {
                            slots.Add(m);
                            Meta(w, "thread_name", 1, TidOf(m.AsId, m.Slot), $"memslot {m.AsId}:{m.Slot} gpa {m.Gpa}");
                        }

                        break;
                    case FaultResolved f when inputs.GetValueOrDefault(f.InputSeq)?.Event is GuestFaulted g:
                    {
                        var tid = SlotTid(slots, g.Gpa.Value);
                        var why = string.Join(" / ", f.Explanation.Select(s => s.Text));
                        Instant(w, $"{g.Access.ToString().ToLowerInvariant()} fault {g.Gpa}: {FaultOutcomes.Name(f.Outcome)}", "fault", tid, Us(e), e.Seq, why);
                        if (f.Mapping is { } map && f.Outcome is FaultOutcome.Mapped or FaultOutcome.Relaxed)
                        {
                            Close(w, open, map.Gpa.Value, Us(e));
                            var name = $"{map.MemType} {Fmt.Size(map.Size)} {Fmt.Perms(map.Perms)} {map.Gpa}";
                            var id = nextId++;
                            open[map.Gpa.Value] = (id, tid, name);
                            w.WriteStartObject();
                            w.WriteString("name", name);
                            w.WriteString("cat", map.MemType.ToString());
                            w.WriteString("ph", "b");
                            w.WriteNumber("id", id);
                            w.WriteNumber("pid", 1);
                            w.WriteNumber("tid", tid);
                            w.WriteNumber("ts", Us(e));
                            w.WriteString("cname", Colour(map.MemType));
                            w.WriteStartObject("args");
                            w.WriteNumber("seq", e.Seq);
                            w.WriteString("policy", f.Policy);
                            w.WriteString("why", why);
                            w.WriteEndObject();
                            w.WriteEndObject();
                        }

                        break;
                    }

                    case Stage2Unmapped u:
                        foreach (var r in u.Ranges)
                        {
                            foreach (var gpa in open.Keys.Where(k => k >= r.Start.Value && k < r.End.Value).ToList())
                            {
                                Close(w, open, gpa, Us(e));
                            }

                            Instant(w, $"unmap {r}", "unmap", SlotTid(slots, r.Start.Value), Us(e), e.Seq, $"caused by seq {u.CauseSeq}");
                        }

                        break;
                    case DivergenceFound d:
                        Instant(w, "divergence", "divergence", 0, Us(e), e.Seq, $"model: {d.Model}; kernel: {d.Kernel}");
                        break;
                    case MemslotDecided refused when refused.PredictedErrno != 0:
                        Instant(w, $"memslot refused {Errno.Format(refused.PredictedErrno)}", "memslot", 0, Us(e), e.Seq, string.Join(" / ", refused.Explanation.Select(s => s.Text)));
                        break;
                }

                if (e.Event is MemoryFaultExitObserved x)
                {
                    Instant(w, $"KVM_EXIT_MEMORY_FAULT {x.Gpa}", "exit", SlotTid(slots, x.Gpa.Value), Us(e), e.Seq, $"flags {x.Flags}");
                }
            }

            var end = events.Count == 0 ? 0 : Us(events[^1]) + 1;
            foreach (var gpa in open.Keys.ToList())
            {
                Close(w, open, gpa, end);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static int TidOf(int asId, int slot) => 1 + (asId * 100_000) + slot;

    private static int SlotTid(List<MemslotSet> slots, ulong gpa) =>
        slots.LastOrDefault(s => gpa >= s.Gpa.Value && gpa < s.Gpa.Value + s.Size) is { } m ? TidOf(m.AsId, m.Slot) : 0;

    private static string Colour(Stage2MemType t) => t switch
    {
        Stage2MemType.Normal or Stage2MemType.WB => "good",
        Stage2MemType.NormalNC or Stage2MemType.WC => "yellow",
        _ => "terrible",
    };

    private static void Close(Utf8JsonWriter w, Dictionary<ulong, (long Id, int Tid, string Name)> open, ulong gpa, double ts)
    {
        if (!open.Remove(gpa, out var o))
        {
            return;
        }

        w.WriteStartObject();
        w.WriteString("name", o.Name);
        w.WriteString("ph", "e");
        w.WriteNumber("id", o.Id);
        w.WriteNumber("pid", 1);
        w.WriteNumber("tid", o.Tid);
        w.WriteNumber("ts", ts);
        w.WriteEndObject();
    }

    private static void Instant(Utf8JsonWriter w, string name, string cat, int tid, double ts, long seq, string why)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("cat", cat);
        w.WriteString("ph", "i");
        w.WriteString("s", "t");
        w.WriteNumber("pid", 1);
        w.WriteNumber("tid", tid);
        w.WriteNumber("ts", ts);
        w.WriteStartObject("args");
        w.WriteNumber("seq", seq);
        w.WriteString("why", why);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void Meta(Utf8JsonWriter w, string name, int pid, int tid, string value)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("ph", "M");
        w.WriteNumber("pid", pid);
        w.WriteNumber("tid", tid);
        w.WriteStartObject("args");
        w.WriteString("name", value);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
