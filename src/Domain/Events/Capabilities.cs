namespace Audit.Domain.Events;

/// <summary>The KVM_ENABLE_CAP capabilities the model reads; others are <see cref="Other"/>.</summary>
public enum KvmCap { Other, ArmMte, ArmEagerSplitChunkSize, ManualDirtyLogProtect2, DisableQuirks2 }

/// <summary>The x86 quirks KVM_CAP_DISABLE_QUIRKS2 names; anything else is <see cref="Unknown"/>.</summary>
public enum X86Quirk { Unknown, LintZero, CdNwCleared, LapicMmioHole, OutSevenZeroFive, MiscEnableNoMwait, FixHypercallInsn, MwaitNeverUdFaults, SlotZapAll, StuffFeatureMsrs, IgnoreGuestPat }

public static class Capabilities
{
    public static KvmCap Parse(string cap) => cap.Trim() switch
    {
        "KVM_CAP_ARM_MTE" => KvmCap.ArmMte,
        "KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE" => KvmCap.ArmEagerSplitChunkSize,
        "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2" => KvmCap.ManualDirtyLogProtect2,
        "KVM_CAP_DISABLE_QUIRKS2" => KvmCap.DisableQuirks2,
        _ => KvmCap.Other,
    };

    /// <summary>A quirk by its uapi name, with or without the KVM_X86_QUIRK_ prefix.</summary>
    public static X86Quirk ParseQuirk(string name)
    {
        var n = name.Trim();
        n = n.StartsWith("KVM_X86_QUIRK_", StringComparison.Ordinal) ? n["KVM_X86_QUIRK_".Length..] : n;
        return n switch
        {
            "LINT0_REENABLED" => X86Quirk.LintZero,
            "CD_NW_CLEARED" => X86Quirk.CdNwCleared,
            "LAPIC_MMIO_HOLE" => X86Quirk.LapicMmioHole,
            "OUT_7E_INC_RIP" => X86Quirk.OutSevenZeroFive,
            "MISC_ENABLE_NO_MWAIT" => X86Quirk.MiscEnableNoMwait,
            "FIX_HYPERCALL_INSN" => X86Quirk.FixHypercallInsn,
            "MWAIT_NEVER_UD_FAULTS" => X86Quirk.MwaitNeverUdFaults,
            "SLOT_ZAP_ALL" => X86Quirk.SlotZapAll,
            "STUFF_FEATURE_MSRS" => X86Quirk.StuffFeatureMsrs,
            "IGNORE_GUEST_PAT" => X86Quirk.IgnoreGuestPat,
            _ => X86Quirk.Unknown,
        };
    }
}
