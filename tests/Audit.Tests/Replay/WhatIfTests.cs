using Audit.Api.Features.Replay;
using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Tests.Replay;

/// <summary>The what-if edit language: parsing, its errors, and how edits rewrite a run's inputs.</summary>
public sealed class WhatIfTests
{
    private static readonly List<(long Seq, InputEvent Input)> Inputs =
    [
        (1, new HostDescribed(Arch.Arm64, "6.17.2", null, 4096, new HostCaps(Fwb: true, CacheDic: true))),
        (3, new VmaMapped(HvaRange.FromSize(new Hva(0xfffd00000000), 0x1000000), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_PFNMAP, HostMemType.MT_DEVICE_nGnRnE, new Backing(BackingKind.Vfio))),
        (5, new MemslotSet(2, 0, new Gpa(0x10000000), 0x1000000, new Hva(0xfffd00000000), MemslotFlags.None, null, null, null)),
        (9, new MemslotSet(2, 0, new Gpa(0x10000000), 0x1000000, new Hva(0xfffd00000000), MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, null, null, null)),
    ];

    private static WhatIfEdit Parse(string text)
    {
        Assert.True(WhatIf.TryParse(text, out var edit, out var error), error);
        return edit!;
    }

    [Fact]
    public void A_vma_flag_added_by_its_start_rewrites_that_vma_and_records_the_old_flags()
    {
        var (inputs, applied, error) = WhatIf.Apply([Parse("vma[0xfffd00000000].flags+=VM_ALLOW_ANY_UNCACHED")], Inputs);
        Assert.Null(error);
        var vma = (VmaMapped)inputs.Single(i => i.Seq == 3).Input;
        Assert.Equal(VmaFlags.VM_SHARED | VmaFlags.VM_PFNMAP | VmaFlags.VM_ALLOW_ANY_UNCACHED, vma.Flags);
        var edit = Assert.Single(applied);
        Assert.Equal([3L], edit.Seqs);
        Assert.Equal(["VM_SHARED|VM_PFNMAP"], edit.Recorded);
        Assert.Same(Inputs[2].Input, inputs[2].Input);
    }

    [Fact]
    public void Host_capabilities_memory_types_and_memslot_flags_are_edited_in_order()
    {
        var (inputs, applied, error) = WhatIf.Apply(
            [Parse("host.fwb=false"), Parse("vma[0xfffd00000000].memType=MT_NORMAL_NC"), Parse("memslot[2].flags-=KVM_MEM_LOG_DIRTY_PAGES")], Inputs);
        Assert.Null(error);
        Assert.Equal(new HostCaps(Fwb: false, CacheDic: true), ((HostDescribed)inputs[0].Input).Caps);
        Assert.Equal(HostMemType.MT_NORMAL_NC, ((VmaMapped)inputs[1].Input).MemType);
        Assert.All(inputs.Skip(2), i => Assert.Equal(MemslotFlags.None, ((MemslotSet)i.Input).Flags));

        // Removing a flag the first call never had changes only the second call.
        Assert.Equal([9L], applied[2].Seqs);
    }

    [Theory]
    [InlineData("vma[0xfffd00000000].flags=VM_NOPE", "VM_NOPE")]
    [InlineData("host.fwb=maybe", "maybe")]
    [InlineData("host.kernel=6.9", "kernel")]
    [InlineData("vma.flags+=VM_IO", "vma[START]")]
    [InlineData("vma[zz].flags+=VM_IO", "zz")]
    [InlineData("memslot[2].gpa=0x1000", "gpa")]
    [InlineData("vma[0x1].memType+=MT_NORMAL", "'=' only")]
    [InlineData("vma[0x1].memType=MT_FAST", "MT_FAST")]
    [InlineData("fwb", "TARGET.FIELD=VALUE")]
    public void A_bad_path_or_value_is_refused_naming_it(string text, string named)
    {
        Assert.False(WhatIf.TryParse(text, out var edit, out var error));
        Assert.Null(edit);
        Assert.Contains(named, error, StringComparison.Ordinal);
        Assert.Contains(text, error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_edit_that_targets_no_input_is_an_error()
    {
        var (_, _, error) = WhatIf.Apply([Parse("memslot[7].flags+=KVM_MEM_READONLY")], Inputs);
        Assert.Contains("no MemslotSet of slot 7", error, StringComparison.Ordinal);
        Assert.Contains("no VmaMapped starting at 0x1000", WhatIf.Apply([Parse("vma[0x1000].flags+=VM_IO")], Inputs).Error, StringComparison.Ordinal);
    }
}
