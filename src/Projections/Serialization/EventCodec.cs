using System.Text.Json;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using K = Audit.Projections.Serialization.KernelNames;

namespace Audit.Projections.Serialization;

/// <summary>Field-by-field JSON shape of every event, written out so that the stored form never follows a CLR rename.</summary>
internal static class EventCodec
{
    private static EventType Input<T>(string traceName, Func<Fields, T> read, Action<Utf8JsonWriter, T> write)
        where T : RunEvent =>
        new(typeof(T), traceName, EventRegistry.SnakeCase(traceName), 1, false, f => read(f), (w, e, _) => write(w, (T)e));

    private static EventType Derived<T>(string traceName, Func<Fields, T> read, Action<Utf8JsonWriter, T> write)
        where T : RunEvent =>
        new(typeof(T), traceName, EventRegistry.SnakeCase(traceName), 1, true, f => read(f), (w, e, _) => write(w, (T)e));

    /// <summary>A derived event with an explanation: its writer is handed the run's step table (null: every step inline).</summary>
    private static EventType Decision<T>(string traceName, Func<Fields, T> read, Action<Utf8JsonWriter, T, StepTable?> write)
        where T : RunEvent =>
        new(typeof(T), traceName, EventRegistry.SnakeCase(traceName), 1, true, f => read(f), (w, e, steps) => write(w, (T)e, steps));

    public static IEnumerable<EventType> All()
    {
        yield return Input("HostDescribed", ReadHost, WriteHost);
        yield return Input(
            "VmCreated",
            f => new VmCreated(f.OptEnum("vmType", K.VmType.Read) ?? VmType.Default, f.OptInt("ipaBits")),
            (w, e) =>
            {
                w.WriteString("vmType", K.VmType.Write(e.VmType));
                w.OptNumber("ipaBits", e.IpaBits);
            });
        yield return Input("CapabilityEnabled", ReadCap, WriteCap);
        yield return Input(
            "NoncoherentDmaChanged",
            f => new NoncoherentDmaChanged(f.Bool("attached"), f.OptStr("device")),
            (w, e) =>
            {
                w.WriteBoolean("attached", e.Attached);
                w.OptString("device", e.Device);
            });
        yield return Input("VmaMapped", ReadVmaMapped, WriteVmaMapped);
        yield return Input("VmaUnmapped", f => new VmaUnmapped(f.PageRange()), (w, e) => w.Range(e.Range));
        yield return Input(
            "VmaProtectionChanged",
            f => new VmaProtectionChanged(f.PageRange(), Prot(f), f.OptEnum("memType", K.HostMemType.Read)),
            (w, e) =>
            {
                w.Range(e.Range);
                w.WriteString("prot", K.FormatPerms(e.Prot));
                w.OptString("memType", e.MemType is { } m ? K.HostMemType.Write(m) : null);
            });
        yield return Input(
            "VmaAdvised",
            f => new VmaAdvised(f.PageRange(), f.Str("advice")),
            (w, e) =>
            {
                w.Range(e.Range);
                w.WriteString("advice", e.Advice);
            });
        yield return Input(
            "VfioRegionAttributesSet",
            f => new VfioRegionAttributesSet(f.Str("device"), f.Int("region"), f.U64("offset"), f.U64("length"), f.Str("attr")),
            (w, e) =>
            {
                w.WriteString("device", e.Device);
                w.WriteNumber("region", e.Region);
                w.Hex("offset", e.Offset);
                w.Hex("length", e.Length);
                w.WriteString("attr", e.Attr);
            });
        yield return Input("MemslotSet", ReadMemslot, WriteMemslot);
        yield return Input(
            "GuestMemfdCreated",
            f => new GuestMemfdCreated(f.Int("fd"), f.U64("size"), f.Flags("flags", K.GmemFlags.Read), f.OptErrno("result")),
            (w, e) =>
            {
                w.WriteNumber("fd", e.Fd);
                w.Hex("size", e.Size);
                w.FlagArray("flags", K.GmemFlags.WriteFlags(e.Flags));
                w.OptNumber("result", e.Result);
            });
        yield return Input(
            "GuestMemfdFallocated",
            f => new GuestMemfdFallocated(f.Int("fd"), f.U64("offset"), f.U64("length"), f.OptBool("punchHole") ?? false),
            (w, e) =>
            {
                w.WriteNumber("fd", e.Fd);
                w.Hex("offset", e.Offset);
                w.Hex("length", e.Length);
                w.WriteBoolean("punchHole", e.PunchHole);
            });
        yield return Input("GuestMemfdClosed", f => new GuestMemfdClosed(f.Int("fd")), (w, e) => w.WriteNumber("fd", e.Fd));
        yield return Input(
            "MemoryAttributesSet",
            f => new MemoryAttributesSet(f.Gpa("gpa"), f.U64("size"), f.Bool("private"), f.OptErrno("result")),
            (w, e) =>
            {
                w.Hex("gpa", e.Gpa.Value);
                w.Hex("size", e.Size);
                w.WriteBoolean("private", e.Private);
                w.OptNumber("result", e.Result);
            });
        yield return Input(
            "GuestMemfdConverted",
            f => new GuestMemfdConverted(
                f.Int("fd"), f.U64("offset"), f.U64("size"), f.Enum("to", K.Shareability.Read),
                f.OptStr("via") ?? "KVM_GMEM_CONVERT", f.OptErrno("result"), f.OptU64("errorOffset")),
            (w, e) =>
            {
                w.WriteNumber("fd", e.Fd);
                w.Hex("offset", e.Offset);
                w.Hex("size", e.Size);
                w.WriteString("to", K.Shareability.Write(e.To));
                w.WriteString("via", e.Via);
                w.OptNumber("result", e.Result);
                w.OptHex("errorOffset", e.ErrorOffset);
            });
        yield return Input("GuestFaulted", ReadFault, WriteFault);
        yield return Input(
            "MmuNotifierInvalidated",
            f =>
            {
                var start = f.U64("start");
                var end = f.U64("end");
                f.RequireAligned("start", start);
                f.RequireAligned("end", end);
                if (end <= start)
                {
                    throw new FieldException($"field 'end': {Hex.Format(end)} is not above start {Hex.Format(start)}");
                }

                return new MmuNotifierInvalidated(new Hva(start), new Hva(end));
            },
            (w, e) =>
            {
                w.Hex("start", e.Start.Value);
                w.Hex("end", e.End.Value);
            });
        yield return Input("Stage2MappingObserved", ReadObserved, WriteObserved);
        yield return Input(
            "MemoryFaultExitObserved",
            f => new MemoryFaultExitObserved(f.Gpa("gpa"), f.OptU64("size") ?? 4096, ReadExitFlags(f)),
            (w, e) =>
            {
                w.Hex("gpa", e.Gpa.Value);
                w.Hex("size", e.Size);
                w.WriteNumber("flags", e.Flags);
            });

        yield return Decision(
            "MemslotDecided",
            f => new MemslotDecided(
                f.U64Long("inputSeq"), f.Enum("change", K.SlotChange.Read), f.Int("predictedErrno"), f.OptInt("recordedErrno"),
                f.Str("policy"), ReadExplanation(f)),
            (w, e, steps) =>
            {
                w.WriteNumber("inputSeq", e.InputSeq);
                w.WriteString("change", K.SlotChange.Write(e.Change));
                w.WriteNumber("predictedErrno", e.PredictedErrno);
                w.OptNumber("recordedErrno", e.RecordedErrno);
                w.WriteString("policy", e.Policy);
                WriteExplanation(w, e.Explanation, steps);
            });
        yield return Decision(
            "FaultResolved",
            f => new FaultResolved(
                f.U64Long("inputSeq"), f.Enum("outcome", K.Outcome.Read), f.Int("errno"), ReadMapping(f.OptObj("mapping")),
                f.Str("policy"), ReadExplanation(f)),
            (w, e, steps) =>
            {
                w.WriteNumber("inputSeq", e.InputSeq);
                w.WriteString("outcome", K.Outcome.Write(e.Outcome));
                w.WriteNumber("errno", e.Errno);
                if (e.Mapping is { } m)
                {
                    w.WritePropertyName("mapping");
                    WriteMapping(w, m);
                }

                w.WriteString("policy", e.Policy);
                WriteExplanation(w, e.Explanation, steps);
            });
        yield return Derived(
            "Stage2Unmapped",
            f => new Stage2Unmapped(f.U64Long("causeSeq"), ReadRanges(f), f.OptStr("rule")),
            (w, e) =>
            {
                w.WriteNumber("causeSeq", e.CauseSeq);
                WriteRanges(w, e.Ranges);
                WriteRule(w, e.Rule);
            });
        yield return Derived(
            "Stage2WriteProtected",
            f => new Stage2WriteProtected(f.U64Long("causeSeq"), ReadRanges(f), f.OptBool("split") ?? false, f.OptStr("rule"), f.OptBool("keepsWrite") ?? false),
            (w, e) =>
            {
                w.WriteNumber("causeSeq", e.CauseSeq);
                WriteRanges(w, e.Ranges);
                w.WriteBoolean("split", e.Split);
                WriteRule(w, e.Rule);
                if (e.KeepsWrite)
                {
                    w.WriteBoolean("keepsWrite", true);
                }
            });
        yield return Decision(
            "IoctlDecided",
            f => new IoctlDecided(f.U64Long("inputSeq"), f.Str("ioctl"), f.Int("predictedErrno"), f.OptInt("recordedErrno"), f.Str("policy"), ReadExplanation(f)),
            (w, e, steps) =>
            {
                w.WriteNumber("inputSeq", e.InputSeq);
                w.WriteString("ioctl", e.Ioctl);
                w.WriteNumber("predictedErrno", e.PredictedErrno);
                w.OptNumber("recordedErrno", e.RecordedErrno);
                w.WriteString("policy", e.Policy);
                WriteExplanation(w, e.Explanation, steps);
            });
        yield return Derived(
            "DivergenceFound",
            f => new DivergenceFound(f.U64Long("inputSeq"), f.Str("model"), f.Str("kernel")),
            (w, e) =>
            {
                w.WriteNumber("inputSeq", e.InputSeq);
                w.WriteString("model", e.Model);
                w.WriteString("kernel", e.Kernel);
            });
    }

    /// <summary>The rule that decided an unmap or write-protect; absent in runs stored before rules were carried.</summary>
    private static void WriteRule(System.Text.Json.Utf8JsonWriter w, string? rule)
    {
        if (rule is not null)
        {
            w.WriteString("rule", rule);
        }
    }

    private static void WriteRanges(Utf8JsonWriter w, ValueList<GpaRange> ranges)
    {
        w.WriteStartArray("ranges");
        foreach (var r in ranges)
        {
            w.WriteStartArray();
            w.WriteStringValue(Hex.Format(r.Start.Value));
            w.WriteStringValue(Hex.Format(r.End.Value));
            w.WriteEndArray();
        }

        w.WriteEndArray();
    }

    private static HostDescribed ReadHost(Fields f)
    {
        var caps = f.OptObj("caps");
        var hostCaps = caps is null
            ? HostCaps.None
            : new HostCaps(caps.OptBool("fwb"), caps.OptBool("cacheDic"), caps.OptBool("selfSnoop"), caps.OptBool("tdp"), caps.OptBool("tdpMmu"), caps.OptBool("pml"));
        var pageSize = f.OptU64("pageSize") ?? 4096;
        if (pageSize is not (4096 or 16384 or 65536))
        {
            throw new FieldException($"field 'pageSize': {pageSize} is not 4096, 16384 or 65536");
        }

        return new HostDescribed(f.Enum("arch", K.Arch.Read), f.Str("kernel"), f.OptEnum("vendor", K.Vendor.Read), pageSize, hostCaps, f.OptStr("inferred"));
    }

    private static void WriteHost(Utf8JsonWriter w, HostDescribed e)
    {
        w.WriteString("arch", K.Arch.Write(e.Arch));
        w.WriteString("kernel", e.Kernel);
        w.OptString("vendor", e.Vendor is { } v ? K.Vendor.Write(v) : null);
        w.WriteNumber("pageSize", e.PageSize);
        w.WriteStartObject("caps");
        w.OptBool("fwb", e.Caps.Fwb);
        w.OptBool("cacheDic", e.Caps.CacheDic);
        w.OptBool("selfSnoop", e.Caps.SelfSnoop);
        w.OptBool("tdp", e.Caps.Tdp);
        w.OptBool("tdpMmu", e.Caps.TdpMmu);
        w.OptBool("pml", e.Caps.Pml);
        w.WriteEndObject();
        w.OptString("inferred", e.Inferred);
    }

    private static CapabilityEnabled ReadCap(Fields f)
    {
        var cap = f.Str("cap");
        var args = new List<CapArg>();
        if (f.OptObj("args") is { } a)
        {
            foreach (var (name, value) in a.Properties())
            {
                var values = value.ValueKind == JsonValueKind.Array
                    ? value.EnumerateArray().Select(Scalar).ToList()
                    : [Scalar(value)];
                args.Add(new CapArg(name, new ValueList<string>(values)));
            }
        }

        return new CapabilityEnabled(cap, new ValueList<CapArg>(args));

        static string Scalar(JsonElement v) => v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();
    }

    private static void WriteCap(Utf8JsonWriter w, CapabilityEnabled e)
    {
        w.WriteString("cap", e.Cap);
        w.WriteStartObject("args");
        foreach (var arg in e.Args)
        {
            // A single value that looks numeric or boolean goes back out as such.
            if (arg.Values.Count == 1)
            {
                w.WritePropertyName(arg.Name);
                WriteScalar(w, arg.Values[0]);
            }
            else
            {
                w.WriteStartArray(arg.Name);
                foreach (var v in arg.Values)
                {
                    WriteScalar(w, v);
                }

                w.WriteEndArray();
            }
        }

        w.WriteEndObject();

        static void WriteScalar(Utf8JsonWriter w, string v)
        {
            if (v is "true" or "false" || (v.Length > 0 && (char.IsAsciiDigit(v[0]) || v[0] == '-') && double.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out _)))
            {
                w.WriteRawValue(v);
            }
            else
            {
                w.WriteStringValue(v);
            }
        }
    }

    private static Perms Prot(Fields f)
    {
        var s = f.Str("prot");
        return K.TryParsePerms(s, out var p) ? p : throw new FieldException($"field 'prot': \"{s}\" is not three characters like \"rw-\"");
    }

    private static VmaMapped ReadVmaMapped(Fields f)
    {
        var range = f.PageRange();
        var prot = Prot(f);
        var flags = f.Flags("flags", K.VmaFlags.Read);
        var memType = f.OptEnum("memType", K.HostMemType.Read);
        var b = f.Obj("backing");
        var backing = new Backing(
            b.Enum("kind", K.Backing.Read), b.OptStr("path"), b.OptU64("pfn"), b.OptU64("pgoff"), b.OptBool("linearMap"),
            b.OptBool("structPage"), b.OptBool("e820Ram"), b.OptU64("hostPageSize"), b.OptBool("thp"));
        if (backing.HostPageSize is { } hps && (hps == 0 || (hps & (hps - 1)) != 0))
        {
            throw new FieldException($"field 'backing.hostPageSize': {hps} is not a power of two");
        }

        return new VmaMapped(range, prot, flags, memType, backing);
    }

    private static void WriteVmaMapped(Utf8JsonWriter w, VmaMapped e)
    {
        w.Range(e.Range);
        w.WriteString("prot", K.FormatPerms(e.Prot));
        w.FlagArray("flags", K.VmaFlags.WriteFlags(e.Flags));
        w.OptString("memType", e.MemType is { } m ? K.HostMemType.Write(m) : null);
        var b = e.Backing;
        w.WriteStartObject("backing");
        w.WriteString("kind", K.Backing.Write(b.Kind));
        w.OptString("path", b.Path);
        w.OptHex("pfn", b.Pfn);
        w.OptHex("pgoff", b.Pgoff);
        w.OptBool("linearMap", b.LinearMap);
        w.OptBool("structPage", b.StructPage);
        w.OptBool("e820Ram", b.E820Ram);
        if (b.HostPageSize is { } hps)
        {
            w.WriteNumber("hostPageSize", hps);
        }

        w.OptBool("thp", b.Thp);
        w.WriteEndObject();
    }

    private static MemslotSet ReadMemslot(Fields f) => new(
        f.Int("slot"), f.OptInt("asId") ?? 0, f.Gpa("gpa"), f.U64("size"), f.Hva("hva"), f.Flags("flags", K.MemslotFlags.Read),
        f.OptInt("guestMemfd"), f.OptU64("guestMemfdOffset"), f.OptErrno("result"));

    private static void WriteMemslot(Utf8JsonWriter w, MemslotSet e)
    {
        w.WriteNumber("slot", e.Slot);
        w.WriteNumber("asId", e.AsId);
        w.Hex("gpa", e.Gpa.Value);
        w.Hex("size", e.Size);
        w.Hex("hva", e.Hva.Value);
        w.FlagArray("flags", K.MemslotFlags.WriteFlags(e.Flags));
        w.OptNumber("guestMemfd", e.GuestMemfd);
        w.OptHex("guestMemfdOffset", e.GuestMemfdOffset);
        w.OptNumber("result", e.Result);
    }

    private static GuestFaulted ReadFault(Fields f) => new(
        f.OptInt("vcpu") ?? 0, f.Gpa("gpa"), f.Enum("access", K.Access.Read), f.OptEnum("kind", K.FaultKind.Read) ?? FaultKind.Translation,
        f.OptBool("private"), f.OptBool("s1ptw") ?? false, f.OptBool("cm") ?? false, f.OptU64("granule"), f.OptBool("gpteDirty"));

    private static void WriteFault(Utf8JsonWriter w, GuestFaulted e)
    {
        w.WriteNumber("vcpu", e.Vcpu);
        w.Hex("gpa", e.Gpa.Value);
        w.WriteString("access", K.Access.Write(e.Access));
        w.WriteString("kind", K.FaultKind.Write(e.Kind));
        w.OptBool("private", e.Private);
        if (e.S1ptw)
        {
            w.WriteBoolean("s1ptw", true);
        }

        if (e.Cm)
        {
            w.WriteBoolean("cm", true);
        }

        w.OptHex("granule", e.Granule);
        w.OptBool("gpteDirty", e.GuestPteDirty);
    }

    private static Stage2MappingObserved ReadObserved(Fields f)
    {
        var gpa = f.U64("gpa");
        var size = f.U64("size");
        if (size < 4096 || (size & (size - 1)) != 0)
        {
            throw new FieldException($"field 'size': {Hex.Format(size)} is not a power of two of at least 4 KiB");
        }

        f.RequireAligned("gpa", gpa, size);
        var permsText = f.OptStr("perms") ?? "---";
        if (!K.TryParsePerms(permsText, out var perms))
        {
            throw new FieldException($"field 'perms': \"{permsText}\" is not three characters like \"rw-\"");
        }

        return new Stage2MappingObserved(new Gpa(gpa), size, f.OptEnum("memType", K.Stage2MemType.Read), f.OptBool("ipat"), perms, f.OptStr("raw"));
    }

    private static void WriteObserved(Utf8JsonWriter w, Stage2MappingObserved e)
    {
        w.Hex("gpa", e.Gpa.Value);
        w.Hex("size", e.Size);
        w.OptString("memType", e.MemType is { } m ? K.Stage2MemType.Write(m) : null);
        w.OptBool("ipat", e.Ipat);
        w.WriteString("perms", K.FormatPerms(e.Perms));
        w.OptString("raw", e.Raw);
    }

    /// <summary>KVM_MEMORY_EXIT_FLAG_PRIVATE is bit 3; accept the number or an array of names.</summary>
    private static ulong ReadExitFlags(Fields f)
    {
        try
        {
            return f.OptU64("flags") ?? 0;
        }
        catch (FieldException)
        {
            var names = f.Flags("flags", ExitFlagNames);
            return (ulong)names;
        }
    }

    private enum ExitFlags : ulong
    {
        None = 0,
        Private = 1 << 3,
    }

    private static readonly Dictionary<string, ExitFlags> ExitFlagNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["PRIVATE"] = ExitFlags.Private,
        ["KVM_MEMORY_EXIT_FLAG_PRIVATE"] = ExitFlags.Private,
    };

    private static ValueList<ExplanationStep> ReadExplanation(Fields f)
    {
        var steps = new List<ExplanationStep>();
        foreach (var (_, steps0) in f.Properties().Where(p => p.Name == "explanation"))
        {
            foreach (var s in steps0.EnumerateArray())
            {
                if (s.ValueKind == JsonValueKind.Number)
                {
                    // An interned step (StepTable): resolved through the run's table.
                    var id = s.GetInt32();
                    steps.Add(f.Steps is { } table && table.TryResolve(id, out var step) ? step : throw new StepMissingException(id));
                    continue;
                }

                steps.Add(ReadStep(s));
            }
        }

        return new ValueList<ExplanationStep>(steps);
    }

    internal static ExplanationStep ReadStep(JsonElement s)
    {
        var facts = new List<Fact>();
        foreach (var fact in s.GetProperty("facts").EnumerateArray())
        {
            long? seq = fact.TryGetProperty("seq", out var sq) && sq.ValueKind == JsonValueKind.Number ? sq.GetInt64() : null;
            facts.Add(new Fact(fact.GetProperty("name").GetString()!, fact.GetProperty("value").GetString()!, seq));
        }

        return new ExplanationStep(s.GetProperty("rule").GetString()!, s.GetProperty("text").GetString()!, new ValueList<Fact>(facts));
    }

    internal static void WriteExplanation(Utf8JsonWriter w, ValueList<ExplanationStep> steps, StepTable? table)
    {
        w.WriteStartArray("explanation");
        foreach (var s in steps)
        {
            if (table?.Intern(s) is { } id)
            {
                w.WriteNumberValue(id);
            }
            else
            {
                WriteStep(w, s);
            }
        }

        w.WriteEndArray();
    }

    internal static void WriteStep(Utf8JsonWriter w, ExplanationStep s)
    {
        w.WriteStartObject();
        w.WriteString("rule", s.Rule);
        w.WriteString("text", s.Text);
        w.WriteStartArray("facts");
        foreach (var fact in s.Facts)
        {
            w.WriteStartObject();
            w.WriteString("name", fact.Name);
            w.WriteString("value", fact.Value);
            if (fact.Seq is { } seq)
            {
                w.WriteNumber("seq", seq);
            }
            else
            {
                w.WriteNull("seq");
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static Mapping? ReadMapping(Fields? m)
    {
        if (m is null)
        {
            return null;
        }

        var permsText = m.Str("perms");
        if (!K.TryParsePerms(permsText, out var perms))
        {
            throw new FieldException($"field 'perms': \"{permsText}\" is not three characters like \"rw-\"");
        }

        return new Mapping(m.Gpa("gpa"), m.U64("size"), m.Enum("memType", K.Stage2MemType.Read), m.OptBool("ipat"), perms);
    }

    internal static void WriteMapping(Utf8JsonWriter w, Mapping m)
    {
        w.WriteStartObject();
        w.Hex("gpa", m.Gpa.Value);
        w.WriteNumber("size", m.Size);
        w.WriteString("memType", K.Stage2MemType.Write(m.MemType));
        if (m.Ipat is { } ipat)
        {
            w.WriteBoolean("ipat", ipat);
        }
        else
        {
            w.WriteNull("ipat");
        }

        w.WriteString("perms", K.FormatPerms(m.Perms));
        w.WriteEndObject();
    }

    private static ValueList<GpaRange> ReadRanges(Fields f)
    {
        var list = new List<GpaRange>();
        foreach (var (_, ranges) in f.Properties().Where(p => p.Name == "ranges"))
        {
            foreach (var r in ranges.EnumerateArray())
            {
                Hex.TryParse(r[0].GetString()!, out var s);
                Hex.TryParse(r[1].GetString()!, out var e);
                list.Add(new GpaRange(new Gpa(s), new Gpa(e)));
            }
        }

        return new ValueList<GpaRange>(list);
    }
}

internal static class JsonWriterExtensions
{
    public static void Hex(this Utf8JsonWriter w, string name, ulong value) => w.WriteString(name, Domain.Addresses.Hex.Format(value));

    public static void OptHex(this Utf8JsonWriter w, string name, ulong? value)
    {
        if (value is { } v)
        {
            w.Hex(name, v);
        }
    }

    public static void OptNumber(this Utf8JsonWriter w, string name, int? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
    }

    public static void OptString(this Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null)
        {
            w.WriteString(name, value);
        }
    }

    public static void OptBool(this Utf8JsonWriter w, string name, bool? value)
    {
        if (value is { } v)
        {
            w.WriteBoolean(name, v);
        }
    }

    public static void Range(this Utf8JsonWriter w, HvaRange r)
    {
        w.Hex("start", r.Start.Value);
        w.Hex("length", r.Size);
    }

    public static void FlagArray(this Utf8JsonWriter w, string name, IEnumerable<string> flags)
    {
        w.WriteStartArray(name);
        foreach (var f in flags)
        {
            w.WriteStringValue(f);
        }

        w.WriteEndArray();
    }
}
