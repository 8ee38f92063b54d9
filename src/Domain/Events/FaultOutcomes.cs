namespace Audit.Domain.Events;

/// <summary>Outcome names as users read them (interfaces.md): mapped, mmio_exit, memory_fault_exit, ...</summary>
public static class FaultOutcomes
{
    private static readonly string[] Names =
        ["mapped", "relaxed", "young", "mmio_exit", "memory_fault_exit", "inject_iabt", "inject_dabt", "sigbus", "error", "skipped", "kept"];

    public static string Name(FaultOutcome o) => Names[(int)o];
}
