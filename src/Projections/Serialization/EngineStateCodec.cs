using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Intervals;
using Audit.Domain.Model;

namespace Audit.Projections.Serialization;

/// <summary>
/// The engine's folded run state in a compact binary form, saved with a run's checkpoint so that the next
/// append to the run starts from it instead of refolding every stored input. The events the state holds
/// (the host, the VM, each VMA's mmap, seed 004's attribute requests) are written as their stored payloads,
/// so they read back through the same serializer as the event log.
/// </summary>
public static class EngineStateCodec
{
    /// <summary>
    /// Bumped whenever <see cref="RunState"/> gains or changes a field: a checkpoint of another format is
    /// ignored and the run refolded (EngineStateCodecTests fails when RunState changes and this codec does not).
    /// </summary>
    public const byte Format = 1;

    public static byte[] Encode(RunState s)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write(Format);
            new Writer(w).State(s);
        }

        return ms.ToArray();
    }

    /// <summary>The state, or null when the bytes are of another format or damaged (the caller refolds).</summary>
    public static RunState? Decode(ReadOnlySpan<byte> bytes, Policy policy)
    {
        if (bytes.Length == 0 || bytes[0] != Format)
        {
            return null;
        }

        using var ms = new MemoryStream(bytes[1..].ToArray(), writable: false);
        using var r = new BinaryReader(ms);
        try
        {
            return new Reader(r).State(policy);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or InvalidCastException or FormatException or ArgumentException
                                       or InvalidOperationException or System.Text.Json.JsonException)
        {
            // A damaged checkpoint is only a lost shortcut: the run's events are the record, and the caller refolds them.
            return null;
        }
    }

    private sealed class Writer(BinaryWriter w)
    {
        // Pieces of one mmap (mprotect splits) share its event: written once, then named by index.
        private readonly Dictionary<VmaMapped, int> _mmaps = new(ReferenceEqualityComparer.Instance);

        public void State(RunState s)
        {
            Event(s.Host);
            Long(s.HostSeq);
            Event(s.Vm);
            Long(s.VmSeq);
            Long(s.MteSeq);
            Long(s.EagerSplitSeq);
            Long(s.ManualProtectInitSetSeq);
            w.Write(s.NoncoherentDma);
            Long(s.NoncoherentDmaSeq);
            Pairs(s.DisabledQuirks, (k, v) => { w.Write((int)k); w.Write(v); });

            Map(s.Vmas, Vma);
            Map(s.Poisoned, Seq);
            Map(s.HostSplit, Seq);
            Map(s.HostWritten, Seq);
            w.Write(s.VfioAttributes.Count);
            foreach (var (request, seq) in s.VfioAttributes)
            {
                Event(request);
                w.Write(seq);
            }

            Pairs(s.Slots, (_, m) => Slot(m));
            Pairs(s.Gmem, (_, g) => Gmem(g));
            Map(s.PrivateAttr, Seq);
            Map(s.SharedAttr, Seq);
            Pairs(s.Refusals, (gfn, x) => { w.Write(gfn); w.Write(x.Seq); w.Write(x.Outcome); w.Write(x.Reason); });
            Pairs(s.PendingMemoryFaults, (gfn, seq) => { w.Write(gfn); Seq(seq); });
            Map(s.Stage2, Entry);
        }

        private void Vma(VmaState v)
        {
            if (_mmaps.TryGetValue(v.Mapped, out var index))
            {
                w.Write(index);
            }
            else
            {
                w.Write(-1);
                Event(v.Mapped);
                _mmaps[v.Mapped] = _mmaps.Count;
            }

            w.Write(v.Start);
            w.Write(v.End);
            w.Write((int)v.Prot);
            w.Write(v.MemType is { } t ? (int)t : -1);
            w.Write(v.Seq);
            w.Write(v.ProtSeq);
        }

        private void Slot(MemslotState m)
        {
            w.Write(m.Slot);
            w.Write(m.AsId);
            w.Write(m.Gpa.Value);
            w.Write(m.Size);
            w.Write(m.Hva.Value);
            w.Write((long)m.Flags);
            w.Write(m.GuestMemfd ?? -1);
            w.Write(m.GuestMemfd is not null);
            w.Write(m.GuestMemfdOffset);
            w.Write(m.Seq);
            w.Write(m.FlagsSeq);
        }

        private void Gmem(GuestMemfdState g)
        {
            w.Write(g.Fd);
            w.Write(g.Size);
            w.Write((long)g.Flags);
            w.Write(g.Seq);
            Long(g.ClosedSeq);
            w.Write(g.ConvertsInPlace);
            Map(g.Bindings, b => { w.Write(b.AsId); w.Write(b.Slot); });
            Map(g.Holes, Seq);
            Map(g.Shared, Seq);
        }

        // A run's stage-2 table can hold millions of entries: each is packed into a few bytes.
        private void Entry(S2Entry e)
        {
            w.Write7BitEncodedInt64((long)e.Granule);
            w.Write((byte)e.MemType);
            var ipat = e.Ipat is { } i ? (i ? 1 : 2) : 0;
            w.Write((byte)((int)e.Perms | (ipat << 3) | (e.Private ? 1 << 5 : 0) | (e.Gmem ? 1 << 6 : 0)));
            w.Write7BitEncodedInt64(e.DecidedSeq);
        }

        private void Seq(long seq) => w.Write7BitEncodedInt64(seq);

        // Intervals are sorted and disjoint: each start is written as its distance from the previous end.
        private void Map<T>(IntervalMap<T> map, Action<T> value)
        {
            w.Write(map.Count);
            ulong end = 0;
            foreach (var i in map.All())
            {
                w.Write7BitEncodedInt64((long)(i.Start - end));
                w.Write7BitEncodedInt64((long)i.Size);
                end = i.End;
                value(i.Value);
            }
        }

        private void Pairs<TKey, TValue>(Dictionary<TKey, TValue> d, Action<TKey, TValue> pair)
            where TKey : notnull
        {
            w.Write(d.Count);
            foreach (var (k, v) in d)
            {
                pair(k, v);
            }
        }

        private void Long(long? v)
        {
            w.Write(v is not null);
            w.Write(v ?? 0);
        }

        private void Event(InputEvent? e)
        {
            if (e is null)
            {
                w.Write(string.Empty);
                return;
            }

            var type = EventRegistry.For(e);
            w.Write(type.StoredName);
            w.Write(type.Version);
            var payload = EventSerializer.SerializePayload(e);
            w.Write(payload.Length);
            w.Write(payload);
        }
    }

    private sealed class Reader(BinaryReader r)
    {
        private readonly List<VmaMapped> _mmaps = [];

        public RunState State(Policy policy)
        {
            var s = new RunState(policy)
            {
                Host = Event<HostDescribed>(),
                HostSeq = Long(),
                Vm = Event<VmCreated>(),
                VmSeq = Long(),
                MteSeq = Long(),
                EagerSplitSeq = Long(),
                ManualProtectInitSetSeq = Long(),
                NoncoherentDma = r.ReadInt32(),
                NoncoherentDmaSeq = Long(),
            };
            Repeat(() => s.DisabledQuirks[(X86Quirk)r.ReadInt32()] = r.ReadInt64());

            Map(s.Vmas, Vma);
            Map(s.Poisoned, Seq);
            Map(s.HostSplit, Seq);
            Map(s.HostWritten, Seq);
            Repeat(() => s.VfioAttributes.Add((Event<VfioRegionAttributesSet>()!, r.ReadInt64())));
            Repeat(() =>
            {
                var m = Slot();
                s.Slots[(m.AsId, m.Slot)] = m;
                s.SlotMap(m.AsId).Set(m.Gpa.Value, m.End, m);
            });
            Repeat(() =>
            {
                var g = Gmem();
                s.Gmem[g.Fd] = g;
            });
            Map(s.PrivateAttr, Seq);
            Map(s.SharedAttr, Seq);
            Repeat(() => s.Refusals[r.ReadUInt64()] = (r.ReadInt64(), r.ReadString(), r.ReadString()));
            Repeat(() => s.PendingMemoryFaults[r.ReadUInt64()] = Seq());
            Map(s.Stage2, Entry);
            return s;
        }

        private VmaState Vma()
        {
            var index = r.ReadInt32();
            VmaMapped mapped;
            if (index < 0)
            {
                mapped = Event<VmaMapped>()!;
                _mmaps.Add(mapped);
            }
            else
            {
                mapped = _mmaps[index];
            }

            var start = r.ReadUInt64();
            var end = r.ReadUInt64();
            var prot = (Perms)r.ReadInt32();
            var memType = r.ReadInt32();
            return new VmaState(mapped, start, end, prot, memType < 0 ? null : (HostMemType)memType, r.ReadInt64(), r.ReadInt64());
        }

        private MemslotState Slot()
        {
            var slot = r.ReadInt32();
            var asId = r.ReadInt32();
            var gpa = new Gpa(r.ReadUInt64());
            var size = r.ReadUInt64();
            var hva = new Hva(r.ReadUInt64());
            var flags = (MemslotFlags)r.ReadInt64();
            var fd = r.ReadInt32();
            int? gmem = r.ReadBoolean() ? fd : null;
            return new MemslotState(slot, asId, gpa, size, hva, flags, gmem, r.ReadUInt64(), r.ReadInt64(), r.ReadInt64());
        }

        private GuestMemfdState Gmem()
        {
            var g = new GuestMemfdState(r.ReadInt32(), r.ReadUInt64(), (GuestMemfdFlags)r.ReadInt64(), r.ReadInt64())
            {
                ClosedSeq = Long(),
                ConvertsInPlace = r.ReadBoolean(),
            };
            Map(g.Bindings, () => (r.ReadInt32(), r.ReadInt32()));
            Map(g.Holes, Seq);
            Map(g.Shared, Seq);
            return g;
        }

        private S2Entry Entry()
        {
            var granule = (ulong)r.Read7BitEncodedInt64();
            var memType = (Stage2MemType)r.ReadByte();
            var bits = r.ReadByte();
            var ipat = (bits >> 3) & 3;
            return new S2Entry(granule, memType, ipat == 0 ? null : ipat == 1, (Perms)(bits & 7), r.Read7BitEncodedInt64(), (bits & (1 << 5)) != 0, (bits & (1 << 6)) != 0);
        }

        private long Seq() => r.Read7BitEncodedInt64();

        private void Map<T>(IntervalMap<T> map, Func<T> value)
        {
            var n = r.ReadInt32();
            ulong end = 0;
            for (var k = 0; k < n; k++)
            {
                var start = end + (ulong)r.Read7BitEncodedInt64();
                end = start + (ulong)r.Read7BitEncodedInt64();
                map.Set(start, end, value());
            }
        }

        private void Repeat(Action item)
        {
            var n = r.ReadInt32();
            for (var k = 0; k < n; k++)
            {
                item();
            }
        }

        private long? Long()
        {
            var has = r.ReadBoolean();
            var v = r.ReadInt64();
            return has ? v : null;
        }

        private T? Event<T>()
            where T : InputEvent
        {
            var name = r.ReadString();
            if (name.Length == 0)
            {
                return null;
            }

            var version = r.ReadInt32();
            var payload = r.ReadBytes(r.ReadInt32());
            return (T)EventSerializer.Deserialize(name, version, payload);
        }
    }
}
