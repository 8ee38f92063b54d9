namespace Audit.Domain.Events;

/// <summary>The madvise advices the model tells apart; anything else is <see cref="Other"/>.</summary>
public enum Advice { Other, DontNeed, DontNeedLocked, Free, Remove, PageOut, HwPoison, PopulateWrite, PopulateRead, HugePage, NoHugePage, Collapse }

public static class Advices
{
    public static Advice Parse(string text) => text.Trim().ToUpperInvariant() switch
    {
        "MADV_DONTNEED" => Advice.DontNeed,
        "MADV_DONTNEED_LOCKED" => Advice.DontNeedLocked,
        "MADV_FREE" => Advice.Free,
        "MADV_REMOVE" => Advice.Remove,
        "MADV_PAGEOUT" => Advice.PageOut,
        "MADV_HWPOISON" => Advice.HwPoison,
        "MADV_POPULATE_WRITE" => Advice.PopulateWrite,
        "MADV_POPULATE_READ" => Advice.PopulateRead,
        "MADV_HUGEPAGE" => Advice.HugePage,
        "MADV_NOHUGEPAGE" => Advice.NoHugePage,
        "MADV_COLLAPSE" => Advice.Collapse,
        _ => Advice.Other,
    };
}
