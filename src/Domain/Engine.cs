using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.GuestMemfd;
using Audit.Domain.Memslots;
using Audit.Domain.Model;
using Audit.Domain.Stage2;

namespace Audit.Domain;

/// <summary>
/// The decider. <see cref="Decide"/> is pure: from the state before an input event it returns the
/// derived events that answer it (decisions, unmaps, divergences). <see cref="Evolve"/> folds the
/// input and its derived events into the state. <see cref="Step"/> does both. Deterministic: the same
/// inputs under the same policy always give the same derived stream, so a stored run can be re-decided
/// under another policy ("what would 6.9 have done?").
/// </summary>
public static class Engine
{
    public static RunState Start(Policy policy) => new(policy);

    public static IReadOnlyList<DerivedEvent> Step(RunState s, long seq, InputEvent e)
    {
        var derived = Decide(s, seq, e);
        Evolve(s, seq, e, derived);
        return derived;
    }

    public static IReadOnlyList<DerivedEvent> Decide(RunState s, long seq, InputEvent e)
    {
        switch (e)
        {
            case GuestFaulted f:
                return s.Arch == Arch.Arm64 ? Arm64Fault.Decide(s, f, seq) : [X86Fault.Decide(s, f, seq)];

            case MemslotSet m:
                return Memslot(s, seq, m);

            case VmaMapped v:
                return Replaced(s, seq, v);

            case VmaUnmapped v:
                return Notifier(s, seq, v.Range.Start.Value, v.Range.End.Value);

            case VmaProtectionChanged v:
                return Notifier(s, seq, v.Range.Start.Value, v.Range.End.Value);

            case VmaAdvised v:
                return HostPages.Invalidates(v.Kind) ? Notifier(s, seq, v.Range.Start.Value, v.Range.End.Value) : [];

            case MmuNotifierInvalidated n:
                return Notifier(s, seq, n.Start.Value, n.End.Value);

            case NoncoherentDmaChanged d:
                return NoncoherentDma(s, seq, d);

            case GuestMemfdCreated g:
            {
                var d = GmemDecision.Create(s, g, seq);
                return WithDivergence(d, seq, d.PredictedErrno, g.Result, GmemDecision.CreateIoctl);
            }

            case GuestMemfdFallocated g when g.PunchHole:
                return GmemZap(s, seq, g.Fd, g.Offset, g.Offset + g.Length);

            case GuestMemfdClosed g:
                return GmemZap(s, seq, g.Fd, 0, ulong.MaxValue);

            case MemoryAttributesSet a:
                return Attributes(s, seq, a);

            case GuestMemfdConverted c:
                return Convert(s, seq, c);

            case Stage2MappingObserved o:
                return Observation.Mapping(s, seq, o);

            case MemoryFaultExitObserved x:
                return Observation.MemoryFault(s, seq, x);

            // Inputs that only change state (Evolve) and decide nothing by themselves.
            case HostDescribed or VmCreated or CapabilityEnabled or VfioRegionAttributesSet or GuestMemfdFallocated:
                return [];

            default:
                throw new ArgumentOutOfRangeException(nameof(e), e.GetType().Name, "the engine has no rule for this input event");
        }
    }

    /// <summary>Where a new VMA replaces an older (larger) one, the old pages are invalidated first.</summary>
    /// <remarks>Its own method: lambdas capturing Decide's parameters made every decision, faults too, allocate their closure.</remarks>
    private static IReadOnlyList<DerivedEvent> Replaced(RunState s, long seq, VmaMapped v)
    {
        var replaced = VmaPlacement(s, v).Where(p => s.Vmas.AnyOverlap(p.Start, p.End)).ToList();
        return replaced.Count == 0 ? [] : replaced.SelectMany(p => Notifier(s, seq, p.Start, p.End)).ToList();
    }

    public static void Evolve(RunState s, long seq, InputEvent e, IReadOnlyList<DerivedEvent> derived)
    {
        switch (e)
        {
            case HostDescribed h:
                s.Host = h;
                s.HostSeq = seq;
                break;
            case VmCreated v:
                s.Vm = v;
                s.VmSeq = seq;
                break;
            case CapabilityEnabled c:
                Capability(s, seq, c);
                break;
            case VfioRegionAttributesSet r:
                s.VfioAttributes.Add((r, seq));
                break;
            case NoncoherentDmaChanged d:
                s.NoncoherentDma = Math.Max(0, s.NoncoherentDma + (d.Attached ? 1 : -1));
                s.NoncoherentDmaSeq = seq;
                break;
            case VmaMapped v:
                foreach (var (from, to) in VmaPlacement(s, v))
                {
                    s.Vmas.Set(from, to, new VmaState(v, from, to, v.Prot, v.MemType, seq, seq));
                    foreach (var (lo, hi, memType, requestSeq) in VfioRegions.Overrides(s, v, from, to))
                    {
                        // The memory type comes from the region request (seed 004): its seq is the fact's.
                        s.Vmas.Set(lo, hi, new VmaState(v, lo, hi, v.Prot, memType, seq, requestSeq));
                    }

                    s.Poisoned.Remove(from, to);
                    s.HostWritten.Remove(from, to);
                    s.HostSplit.Remove(from, to);
                }

                break;
            case VmaUnmapped v:
                HostPages.SplitPartialHugePages(s, seq, v.Range.Start.Value, v.Range.End.Value);
                s.Vmas.Remove(v.Range.Start.Value, v.Range.End.Value);
                s.Poisoned.Remove(v.Range.Start.Value, v.Range.End.Value);
                s.HostWritten.Remove(v.Range.Start.Value, v.Range.End.Value);
                break;
            case VmaProtectionChanged p:
                HostPages.SplitPartialHugePages(s, seq, p.Range.Start.Value, p.Range.End.Value);
                foreach (var i in s.Vmas.Overlapping(p.Range.Start.Value, p.Range.End.Value))
                {
                    var from = Math.Max(i.Start, p.Range.Start.Value);
                    var to = Math.Min(i.End, p.Range.End.Value);
                    s.Vmas.Set(from, to, i.Value with { Start = from, End = to, Prot = p.Prot, MemType = p.MemType ?? i.Value.MemType, ProtSeq = seq });
                    if (i.Start < from)
                    {
                        s.Vmas.Set(i.Start, from, i.Value with { End = from });
                    }

                    if (i.End > to)
                    {
                        s.Vmas.Set(to, i.End, i.Value with { Start = to });
                    }
                }

                break;
            case VmaAdvised a:
                HostPages.Advise(s, seq, a);
                break;
            case MemslotSet m:
                ApplyMemslot(s, seq, m, (MemslotDecided)derived[0]);
                break;
            case GuestMemfdCreated g when ((IoctlDecided)derived[0]).PredictedErrno == 0:
                s.Gmem[g.Fd] = new GuestMemfdState(g.Fd, g.Size, g.Flags, seq);
                break;
            case GuestMemfdFallocated g when s.Gmem.TryGetValue(g.Fd, out var file):
                if (g.PunchHole)
                {
                    file.Holes.Set(g.Offset, g.Offset + g.Length, seq);
                }
                else
                {
                    file.Holes.Remove(g.Offset, g.Offset + g.Length);
                }

                break;
            case GuestMemfdClosed g when s.Gmem.TryGetValue(g.Fd, out var file):
                file.ClosedSeq = seq;
                break;
            case MemoryAttributesSet a when ((IoctlDecided)derived[0]).PredictedErrno == 0:
                if (a.Private)
                {
                    s.PrivateAttr.Set(a.Gpa.Value, a.Gpa.Value + a.Size, seq);
                    s.SharedAttr.Remove(a.Gpa.Value, a.Gpa.Value + a.Size);
                }
                else
                {
                    s.PrivateAttr.Remove(a.Gpa.Value, a.Gpa.Value + a.Size);
                    s.SharedAttr.Set(a.Gpa.Value, a.Gpa.Value + a.Size, seq);
                }

                break;
            case GuestMemfdConverted c when ((IoctlDecided)derived[0]).PredictedErrno == 0 && s.Gmem.TryGetValue(c.Fd, out var file):
                file.ConvertsInPlace = true;
                if (c.To == Shareability.Shared)
                {
                    file.Shared.Set(c.Offset, c.Offset + c.Size, seq);
                }
                else
                {
                    file.Shared.Remove(c.Offset, c.Offset + c.Size);
                }

                break;
            case GuestFaulted f:
                ApplyFault(s, f, (FaultResolved)derived[0]);
                break;
            case MemoryFaultExitObserved x:
                s.PendingMemoryFaults.Remove(x.Gpa.Gfn);
                break;

            // Refused ioctls, calls on unknown files and observations change no state.
            case GuestMemfdCreated or GuestMemfdFallocated or GuestMemfdClosed or MemoryAttributesSet or GuestMemfdConverted
                or MmuNotifierInvalidated or Stage2MappingObserved:
                break;

            default:
                throw new ArgumentOutOfRangeException(nameof(e), e.GetType().Name, "the engine does not know how this input event changes a run's state");
        }

        // By index: a foreach over the interface boxed an enumerator per input.
        for (var i = 0; i < derived.Count; i++)
        {
            switch (derived[i])
            {
                case Stage2Unmapped u:
                    foreach (var r in u.Ranges)
                    {
                        s.Stage2.Remove(r.Start.Value, r.End.Value);
                    }

                    break;
                case Stage2WriteProtected w:
                    WriteProtect(s, w);
                    break;
            }
        }
    }

    /// <remarks>Its own method, so that only a write protection allocates the closure over it.</remarks>
    private static void WriteProtect(RunState s, Stage2WriteProtected w)
    {
        foreach (var r in w.Ranges)
        {
            s.Stage2.Update(r.Start.Value, r.End.Value, e => e with { Perms = w.KeepsWrite ? e.Perms : e.Perms & ~Perms.W, Granule = w.Split ? 4096 : e.Granule });
        }
    }

    internal static List<(ulong Start, ulong End)> VmaPlacement(RunState s, VmaMapped v) =>
        Model.VmaPlacement.Pieces(s.Vmas, x => x.Mapped.Range.Size, v);

    private static void Capability(RunState s, long seq, CapabilityEnabled c)
    {
        switch (c.Kind)
        {
            case KvmCap.ArmMte when s.Policy.Holds(Rules.Arm64MteSharedAtFault) || s.Policy.Holds(Rules.Arm64Mte):
                // KVM_CAP_ARM_MTE exists from 5.14; earlier kernels refuse it and the VM has no MTE.
                s.MteSeq = seq;
                break;
            case KvmCap.ArmEagerSplitChunkSize:
                var size = c.Args.FirstOrDefault(a => a.Name is "size" or "chunk_size" or "args")?.Values.FirstOrDefault();
                s.EagerSplitSeq = size is null || size == "0" ? null : seq;
                break;
            case KvmCap.ManualDirtyLogProtect2:
                if (c.Args.Any(a => a.Values.Any(v => v.Contains("INITIALLY_SET", StringComparison.OrdinalIgnoreCase) || v == "3")))
                {
                    s.ManualProtectInitSetSeq = seq;
                }

                break;
            case KvmCap.DisableQuirks2:
                DisableQuirks(s, seq, c.Args.Where(a => a.Name == "quirks").SelectMany(a => a.Values).Select(Capabilities.ParseQuirk).ToList());
                break;
        }
    }

    /// <summary>
    /// KVM_CAP_DISABLE_QUIRKS2 fails whole (-EINVAL, nothing disabled) when any bit is not supported: an
    /// unknown quirk, SLOT_ZAP_ALL before 6.12, IGNORE_GUEST_PAT before 6.16 or on a CPU without self-snoop.
    /// </summary>
    private static void DisableQuirks(RunState s, long seq, IReadOnlyList<X86Quirk> quirks)
    {
        bool Supported(X86Quirk q) => q switch
        {
            X86Quirk.Unknown => false,
            X86Quirk.SlotZapAll => s.Policy.Holds(Rules.X86SlotZapAllQuirk),
            X86Quirk.IgnoreGuestPat => s.Policy.Holds(Rules.X86VmxIgnoreGuestPatQuirk) && s.Host?.Caps.SelfSnoop == true,
            _ => true,
        };

        if (quirks.All(Supported))
        {
            foreach (var q in quirks)
            {
                s.DisabledQuirks[q] = seq;
            }
        }
    }

    private static List<DerivedEvent> Memslot(RunState s, long seq, MemslotSet m)
    {
        var decided = MemslotDecision.Decide(s, m, seq);
        var result = new List<DerivedEvent> { decided };
        if (decided.PredictedErrno == 0 && s.Slots.TryGetValue((m.AsId, m.Slot), out var old))
        {
            result.AddRange(SlotCommit.Derived(s, seq, decided.Change, old, m));
        }

        AddDivergence(result, seq, decided.PredictedErrno, m.Result, "KVM_SET_USER_MEMORY_REGION");
        return result;
    }

    private static void ApplyMemslot(RunState s, long seq, MemslotSet m, MemslotDecided d)
    {
        if (d.PredictedErrno != 0 || d.Change == SlotChange.Noop)
        {
            return;
        }

        s.Slots.TryGetValue((m.AsId, m.Slot), out var old);
        if (old is not null)
        {
            s.SlotMap(old.AsId).Remove(old.Gpa.Value, old.End);
            if (old.GuestMemfd is { } ofd && s.Gmem.TryGetValue(ofd, out var og) && d.Change == SlotChange.Delete)
            {
                og.Bindings.Remove(old.GuestMemfdOffset, old.GuestMemfdOffset + old.Size);
            }
        }

        if (d.Change == SlotChange.Delete)
        {
            s.Slots.Remove((m.AsId, m.Slot));
            return;
        }

        var slot = d.Change switch
        {
            SlotChange.Create => new MemslotState(m.Slot, m.AsId, m.Gpa, m.Size, m.Hva, m.Flags, m.GuestMemfd, m.GuestMemfdOffset ?? 0, seq, seq),
            SlotChange.Move => old! with { Gpa = m.Gpa, Seq = seq },
            _ => old! with { Flags = m.Flags, FlagsSeq = seq },
        };
        s.Slots[(m.AsId, m.Slot)] = slot;
        s.SlotMap(m.AsId).Set(slot.Gpa.Value, slot.End, slot);
        if (d.Change == SlotChange.Create && slot.HasGmem && slot.GuestMemfd is { } fd && s.Gmem.TryGetValue(fd, out var g))
        {
            g.Bindings.Set(slot.GuestMemfdOffset, slot.GuestMemfdOffset + slot.Size, (slot.AsId, slot.Slot));
        }
    }

    private static void ApplyFault(RunState s, GuestFaulted f, FaultResolved r)
    {
        if (r.Mapping is null && r.Outcome is not FaultOutcome.Young)
        {
            s.Refusals[f.Gpa.Gfn] = (r.InputSeq, FaultOutcomes.Name(r.Outcome), r.Explanation.Count > 0 ? r.Explanation[^1].Text : "");
        }
        else
        {
            s.Refusals.Remove(f.Gpa.Gfn);
        }

        // Both make KVM_RUN return -EFAULT: a memory-fault exit, and a pfn lookup that failed (kvm_handle_error_pfn).
        if (r.Outcome == FaultOutcome.MemoryFaultExit || (r.Outcome == FaultOutcome.Error && r.Errno == Errno.EFAULT))
        {
            s.PendingMemoryFaults[f.Gpa.Gfn] = r.InputSeq;
            return;
        }

        if (r.Mapping is not { } m || r.Outcome is not (FaultOutcome.Mapped or FaultOutcome.Relaxed))
        {
            return;
        }

        var slot = s.SlotAt(f.Gpa);

        var isPrivate = s.Arch == Arch.X86_64 && X86Fault.FaultIsPrivate(s, f);
        var gmem = slot is not null && slot.HasGmem && (isPrivate || (s.Arch == Arch.Arm64 ? s.Policy.GmemAbort : X86Fault.GmemOnly(s, slot)));
        if (r.Outcome == FaultOutcome.Relaxed && s.Stage2.TryFind(f.Gpa.Value, out var cur))
        {
            s.Stage2.Set(m.Gpa.Value, m.Gpa.Value + m.Size, cur.Value with { Perms = m.Perms, DecidedSeq = r.InputSeq });
            return;
        }

        s.Stage2.Set(m.Gpa.Value, m.Gpa.Value + m.Size, new S2Entry(m.Size, m.MemType, m.Ipat, m.Perms, r.InputSeq, isPrivate, gmem));
        if (!gmem && f.Access == Access.Write && slot is not null)
        {
            // A write pinned the host page writable: a later read of it gets W (hva_to_pfn).
            var hva = slot.HvaOf(m.Gpa).Value;
            s.HostWritten.Set(hva, hva + m.Size, r.InputSeq);
        }
    }

    /// <summary>
    /// MMU-notifier invalidation of an hva range: every memslot reaching it unmaps the matching gfns,
    /// private mappings too, except on TDX VMs whose private entries live in a root of their own.
    /// </summary>
    private static IReadOnlyList<DerivedEvent> Notifier(RunState s, long seq, ulong start, ulong end)
    {
        var gpas = Invalidation.GpaRangesOfHva(s, start, end);
        if (gpas.Count == 0)
        {
            return [];
        }

        var ranges = Invalidation.Unmap(s, gpas, s.VmType == VmType.Tdx ? e => e.Private : null);
        return ranges.Count > 0 ? [new Stage2Unmapped(seq, ranges, Rules.MmuNotifier.Id)] : [];
    }

    private static IReadOnlyList<DerivedEvent> NoncoherentDma(RunState s, long seq, NoncoherentDmaChanged d)
    {
        var transition = d.Attached ? s.NoncoherentDma == 0 : s.NoncoherentDma == 1;
        var selfSnoop611 = s.Policy.Holds(Rules.X86VmxSelfSnoop) && s.Host?.Caps.SelfSnoop == true;
        var mayIgnorePat = (s.Policy.X86 is X86Memtype.Vmx610 or X86Memtype.Vmx611 && !selfSnoop611)
            || (s.Policy.X86 == X86Memtype.Vmx616 && X86Fault.QuirkIgnoreGuestPat(s, out _));
        if (s.Arch != Arch.X86_64 || !transition || !mayIgnorePat || !s.Policy.Holds(Rules.NoncoherentDmaZap))
        {
            return [];
        }

        var all = Invalidation.Everything(s);
        return all.Count > 0 ? [new Stage2Unmapped(seq, all, Rules.NoncoherentDmaZap.Id)] : [];
    }

    private static IReadOnlyList<DerivedEvent> GmemZap(RunState s, long seq, int fd, ulong offset, ulong end)
    {
        if (!s.Gmem.TryGetValue(fd, out var g))
        {
            return [];
        }

        // Every mapping of the bound gfns goes (TDX keeps its shared root: only the private entries).
        var ranges = Invalidation.Unmap(s, Invalidation.GpaRangesOfGmem(s, g, offset, end), s.VmType == VmType.Tdx ? e => !e.Gmem : null);
        return ranges.Count > 0 ? [new Stage2Unmapped(seq, ranges, Rules.GmemInvalidate.Id)] : [];
    }

    private static List<DerivedEvent> Attributes(RunState s, long seq, MemoryAttributesSet a)
    {
        var decided = GmemDecision.Attributes(s, a, seq, out var noop);
        var result = new List<DerivedEvent> { decided };
        if (decided.PredictedErrno == 0 && !noop)
        {
            // Mappings of the old kind go: making a range private zaps its shared mappings, and back.
            var ranges = Invalidation.Unmap(s, [(a.Gpa.Value, a.Gpa.Value + a.Size)], e => e.Private == a.Private);
            if (ranges.Count > 0)
            {
                result.Add(new Stage2Unmapped(seq, ranges, Rules.AttributeZap.Id));
            }
        }

        AddDivergence(result, seq, decided.PredictedErrno, a.Result, GmemDecision.AttributesIoctl);
        return result;
    }

    private static List<DerivedEvent> Convert(RunState s, long seq, GuestMemfdConverted c)
    {
        var decided = GmemDecision.Convert(s, c, seq);
        var result = new List<DerivedEvent> { decided };
        if (decided.PredictedErrno == 0 && s.Gmem.TryGetValue(c.Fd, out var g))
        {
            var ranges = Invalidation.Unmap(s, Invalidation.GpaRangesOfGmem(s, g, c.Offset, c.Offset + c.Size));
            if (ranges.Count > 0)
            {
                result.Add(new Stage2Unmapped(seq, ranges, Rules.GmemConvert.Id));
            }
        }

        AddDivergence(result, seq, decided.PredictedErrno, c.Result, c.Via);
        return result;
    }

    private static IReadOnlyList<DerivedEvent> WithDivergence(DerivedEvent decided, long seq, int predicted, int? recorded, string what)
    {
        var list = new List<DerivedEvent> { decided };
        AddDivergence(list, seq, predicted, recorded, what);
        return list;
    }

    private static void AddDivergence(List<DerivedEvent> list, long seq, int predicted, int? recorded, string what)
    {
        if (recorded is { } r && r != predicted)
        {
            list.Add(new DivergenceFound(seq, $"{what} returns {Errno.Format(predicted)}", $"{what} returned {Errno.Format(r)}"));
        }
    }
}
