using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// Dirty logging still on when the run ends: logging forces 4K mappings (force_pte) and write-protects
/// them, so every first write traps; a migration that finished or failed should turn it off.
/// </summary>
public sealed class DirtyLogLeftOn : LintRule
{
    public override LintRuleInfo Info { get; } = new(
        "dirty-log-left-on", Severity.Warning,
        "Dirty logging left on at the end of the run",
        "A memslot still has KVM_MEM_LOG_DIRTY_PAGES when the run ends. While logging, KVM maps only 4K pages and write-protects them, so the guest runs without huge pages and traps on writes.",
        "Clear KVM_MEM_LOG_DIRTY_PAGES (KVM_SET_USER_MEMORY_REGION with the flag off) when migration or dirty tracking ends.");

    public override void Finish(RunState end)
    {
        foreach (var slot in end.Slots.Values.Where(s => s.LogDirty && !s.ReadOnly).OrderBy(s => s.Slot))
        {
            Report($"slot {slot.Slot} (gpa {slot.Gpa}, {Fmt.Size(slot.Size)}) still logs dirty pages at the end of the run", [slot.FlagsSeq]);
        }
    }
}
