using Audit.Api.Features.Lint;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Tests.Domain;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Lint;

/// <summary>Each lint rule on a run built to trigger it and on one that does not (the engine decides, lint judges the record).</summary>
public sealed class LintRuleTests
{
    private const ulong Ram = 0x7f0000000000, Bar = 0x7f1000000000;

    /// <summary>The scenario's log as a stored run: each input, then its derived events with the following seqs.</summary>
    internal static List<Recorded> Stored(Scenario s) =>
        s.Log.SelectMany(x => x.Derived.Select((d, i) => new Recorded(x.Seq + 1 + i, null, d)).Prepend(new Recorded(x.Seq, null, x.Input))).ToList();

    private static LintReport Lint(Scenario s) => Linter.Lint("t", s.State.Policy, Stored(s));

    private static List<Finding> Findings(Scenario s, string rule) => Lint(s).Findings.Where(f => f.RuleId == rule).ToList();

    private static Scenario RamAt(Scenario s, ulong hva = Ram, Backing? backing = null, MemslotFlags flags = MemslotFlags.None)
    {
        s.Vma(hva, 0x400000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, backing ?? Hugetlb(M2));
        s.Slot(0, 0x40000000, 0x400000, hva, flags);
        return s;
    }

    private static Scenario BarAt(Scenario s, VmaFlags flags, HostMemType memType = HostMemType.MT_DEVICE_nGnRnE)
    {
        s.Vma(Bar, 0x1000000, flags, memType, Vfio(0x66000000));
        s.Slot(2, 0x10000000, 0x1000000, Bar);
        return s;
    }

    [Fact]
    public void A_clean_arm64_run_has_no_finding()
    {
        var s = BarAt(RamAt(Arm64()), BarFlags);
        s.Fault(0x40000000, Access.Exec);
        s.Fault(0x40200000, Access.Write);
        s.Fault(0x10000040, Access.Write);
        Assert.Empty(Lint(s).Findings);
    }

    [Fact]
    public void Cacheable_pfnmap_without_fwb_is_an_error_refused_on_6_17_and_unguaranteed_before()
    {
        var refused = BarAt(Arm64("6.17.2", fwb: false), PfnFlags, HostMemType.MT_NORMAL);
        var f = Assert.Single(Findings(refused, "cacheable-pfnmap-unguaranteed"));
        Assert.Equal(Severity.Error, f.Severity);
        Assert.Contains("-EINVAL", f.Message, StringComparison.Ordinal);
        Assert.Equal([3, 4], f.Seqs);
        Assert.Empty(Findings(refused, "memslot-refused"));

        var older = BarAt(Arm64("6.9.0", fwb: false), PfnFlags, HostMemType.MT_NORMAL);
        Assert.Contains("6.17+ refuses", Assert.Single(Findings(older, "cacheable-pfnmap-unguaranteed")).Message, StringComparison.Ordinal);

        Assert.Empty(Findings(BarAt(Arm64("6.17.2"), PfnFlags, HostMemType.MT_NORMAL), "cacheable-pfnmap-unguaranteed"));
    }

    [Fact]
    public void Device_mappings_that_could_be_normal_nc_are_flagged_per_vma()
    {
        var noFlag = BarAt(Arm64(), PfnFlags);
        noFlag.Fault(0x10000040, Access.Write);
        noFlag.Fault(0x10400040, Access.Write);
        var f = Assert.Single(Findings(noFlag, "device-not-normal-nc"));
        Assert.Contains("lacks VM_ALLOW_ANY_UNCACHED", f.Message, StringComparison.Ordinal);
        Assert.Equal(3, f.Seqs.Count);

        var oldKernel = BarAt(Arm64("6.8.0"), BarFlags);
        oldKernel.Fault(0x10000040, Access.Write);
        Assert.Contains("predates 6.9", Assert.Single(Findings(oldKernel, "device-not-normal-nc")).Message, StringComparison.Ordinal);

        // GPU memory (cacheable pgprot) is Device before 6.17 and Normal from it.
        var gpu = BarAt(Arm64("6.8.0"), PfnFlags, HostMemType.MT_NORMAL);
        gpu.Fault(0x10000040, Access.Write);
        Assert.Contains("predates 6.17", Assert.Single(Findings(gpu, "device-not-normal-nc")).Message, StringComparison.Ordinal);
        var gpu617 = BarAt(Arm64("6.17.2"), PfnFlags, HostMemType.MT_NORMAL);
        gpu617.Fault(0x10000040, Access.Write);
        Assert.Empty(Findings(gpu617, "device-not-normal-nc"));

        var nc = BarAt(Arm64(), BarFlags);
        nc.Fault(0x10000040, Access.Write);
        Assert.Empty(Findings(nc, "device-not-normal-nc"));
    }

    [Fact]
    public void An_instruction_fetch_from_a_bar_is_flagged_and_one_from_ram_is_not()
    {
        var s = BarAt(RamAt(Arm64()), BarFlags);
        var abortSeq = s.LastSeq + 1;
        s.Fault(0x10001000, Access.Exec);
        Assert.Equal([abortSeq], Assert.Single(Findings(s, "exec-noncacheable")).Seqs);

        var ram = RamAt(Arm64());
        ram.Fault(0x40000000, Access.Exec);
        Assert.Empty(Findings(ram, "exec-noncacheable"));
    }

    [Fact]
    public void Mte_with_a_file_mapping_is_refused_or_found_at_the_end()
    {
        var refused = Arm64();
        refused.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        RamAt(refused, backing: new Backing(BackingKind.File, "/images/ram", LinearMap: true, StructPage: true, HostPageSize: 4096));
        Assert.Contains("-EINVAL", Assert.Single(Findings(refused, "mte-vma-not-allowed")).Message, StringComparison.Ordinal);

        // MTE switched on after the memslot: nothing refused it, the end state still shows the problem.
        var late = RamAt(Arm64(), backing: new Backing(BackingKind.File, "/images/ram", LinearMap: true, StructPage: true, HostPageSize: 4096));
        late.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        Assert.Contains("without VM_MTE_ALLOWED", Assert.Single(Findings(late, "mte-vma-not-allowed")).Message, StringComparison.Ordinal);

        var allowed = Arm64();
        allowed.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        allowed.Vma(Ram, 0x400000, VmaFlags.VM_SHARED | VmaFlags.VM_MTE_ALLOWED, HostMemType.MT_NORMAL_TAGGED, new Backing(BackingKind.Shmem));
        allowed.Slot(0, 0x40000000, 0x400000, Ram);
        Assert.Empty(Findings(allowed, "mte-vma-not-allowed"));
    }

    [Fact]
    public void A_memslot_whose_gpa_and_hva_differ_modulo_2m_loses_its_blocks()
    {
        var s = RamAt(Arm64(), hva: Ram + 0x100000);
        Assert.Contains("modulo 2M", Assert.Single(Findings(s, "memslot-not-congruent")).Message, StringComparison.Ordinal);
        Assert.Empty(Findings(RamAt(Arm64()), "memslot-not-congruent"));

        // 4K anonymous memory without THP cannot use blocks anyway: nothing is lost by the offset.
        Assert.Empty(Findings(RamAt(Arm64(), hva: Ram + 0x100000, backing: Anon(thp: false)), "memslot-not-congruent"));
    }

    [Fact]
    public void Guest_ram_without_thp_is_flagged_and_with_thp_is_not()
    {
        Assert.Single(Findings(RamAt(Arm64(), backing: Anon(thp: false)), "thp-disabled-guest-ram"));
        Assert.Empty(Findings(RamAt(Arm64(), backing: Anon(thp: true)), "thp-disabled-guest-ram"));
    }

    [Fact]
    public void Dirty_logging_still_on_at_the_end_is_flagged_and_switched_off_is_not()
    {
        var on = RamAt(Arm64());
        on.Slot(0, 0x40000000, 0x400000, Ram, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal([on.LastSeq - 1], Assert.Single(Findings(on, "dirty-log-left-on")).Seqs);

        on.Slot(0, 0x40000000, 0x400000, Ram);
        Assert.Empty(Findings(on, "dirty-log-left-on"));
    }

    [Fact]
    public void Pages_faulted_4k_while_logging_stay_4k_after_logging_stops()
    {
        var s = RamAt(Arm64());
        s.Slot(0, 0x40000000, 0x400000, Ram, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal(K4, s.Fault(0x40200000, Access.Write).Mapping!.Size);
        s.Slot(0, 0x40000000, 0x400000, Ram);
        Assert.Contains("4K", Assert.Single(Findings(s, "blocks-not-rebuilt")).Message, StringComparison.Ordinal);

        // A block mapped before logging and only write-protected (no eager split) is still a block.
        var kept = RamAt(Arm64());
        kept.Fault(0x40200000, Access.Write);
        kept.Slot(0, 0x40000000, 0x400000, Ram, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        kept.Slot(0, 0x40000000, 0x400000, Ram);
        Assert.Empty(Findings(kept, "blocks-not-rebuilt"));
    }

    private static Scenario Snp()
    {
        var s = X86("6.16.1", X86Vendor.Amd, VmType.Snp);
        s.Do(new GuestMemfdCreated(11, 0x40000000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x40000000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x40000000, true, null));
        return s;
    }

    [Fact]
    public void Repeated_mismatch_exits_on_one_gfn_are_flagged_a_single_one_is_not()
    {
        var once = Snp();
        once.Fault(0x200000, Access.Write, isPrivate: false);
        Assert.Empty(Findings(once, "gmem-repeated-mismatch"));

        once.Fault(0x200000, Access.Write, isPrivate: false);
        var f = Assert.Single(Findings(once, "gmem-repeated-mismatch"));
        Assert.Equal(2, f.Seqs.Count);
        Assert.Contains("0x200000", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refused_attribute_change_is_a_failed_conversion()
    {
        var s = X86("6.16.1", vm: VmType.SwProtected);
        s.Do(new MemoryAttributesSet(new(0x800), 0x1000, true, null));
        var f = Assert.Single(Findings(s, "gmem-conversion-failed"));
        Assert.Contains("kvm_vm_ioctl_set_mem_attributes", f.Message, StringComparison.Ordinal);

        var ok = X86("6.16.1", vm: VmType.SwProtected);
        ok.Do(new MemoryAttributesSet(new(0x0), 0x1000, true, null));
        Assert.Empty(Findings(ok, "gmem-conversion-failed"));
    }

    [Fact]
    public void Closing_a_guest_memfd_with_a_bound_memslot_is_flagged_after_deleting_the_slot_it_is_not()
    {
        var s = Snp();
        s.Do(new GuestMemfdClosed(11));
        Assert.Single(Findings(s, "gmem-slot-closed"));

        var tidy = Snp();
        tidy.Slot(0, 0x0, 0, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        tidy.Do(new GuestMemfdClosed(11));
        Assert.Empty(Findings(tidy, "gmem-slot-closed"));
    }

    [Fact]
    public void Every_divergence_is_a_finding()
    {
        var s = Arm64();
        s.Vma(Ram, 0x400000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, Hugetlb(M2));
        s.Do(new MemslotSet(0, 0, new(0x40000000), 0x400000, new(Ram), MemslotFlags.None, null, null, Errno.EINVAL));
        s.Do(new MemslotSet(1, 0, new(0x80000000), 0x400000, new(Ram), MemslotFlags.None, null, null, Errno.EEXIST));
        Assert.Equal(2, Findings(s, "model-divergence").Count);
        Assert.Empty(Findings(RamAt(Arm64()), "model-divergence"));
    }

    [Fact]
    public void A_refused_memslot_names_the_refusing_rule()
    {
        var s = Arm64();
        s.Vma(Ram, 0x400000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, Hugetlb(M2));
        s.Slot(0, 0x40000800, 0x400000, Ram);
        var f = Assert.Single(Findings(s, "memslot-refused"));
        Assert.Contains(Rules.SlotAlignment.Id, f.Message, StringComparison.Ordinal);
        Assert.Empty(Findings(RamAt(Arm64()), "memslot-refused"));
    }

    [Fact]
    public void Every_lint_rule_has_a_unique_kebab_case_id_and_text_for_each_field()
    {
        Assert.Equal(Linter.Catalogue.Count, Linter.Catalogue.Select(r => r.Id).Distinct().Count());
        Assert.All(Linter.Catalogue, r =>
        {
            Assert.Matches("^[a-z0-9]+(-[a-z0-9]+)*$", r.Id);
            Assert.All(new[] { r.Title, r.Description, r.Help }, t => Assert.False(string.IsNullOrWhiteSpace(t)));
        });
    }

    [Fact]
    public void Docs_rules_md_lists_exactly_the_lint_rules_in_code_with_their_severity()
    {
        var doc = File.ReadAllText(Path.Combine(Audit.Tests.Infrastructure.Paths.Repo, "docs", "rules.md"));
        var section = doc[doc.IndexOf("## Lint rules", StringComparison.Ordinal)..];
        var rows = System.Text.RegularExpressions.Regex.Matches(section, @"^\| `(?<id>[a-z0-9-]+)` \| (?<sev>error|warning|note) \|", System.Text.RegularExpressions.RegexOptions.Multiline)
            .ToDictionary(m => m.Groups["id"].Value, m => m.Groups["sev"].Value);
        Assert.Equal(Linter.Catalogue.Select(r => r.Id).Order(), rows.Keys.Order());
        Assert.All(Linter.Catalogue, r => Assert.Equal(r.Severity.ToString().ToLowerInvariant(), rows[r.Id]));
    }
}
