using Audit.Domain.Events;

namespace Audit.Projections.Temporal;

/// <summary>Outcome names as users read them (interfaces.md).</summary>
public static class RunProjectionsNames
{
    public static string Outcome(FaultOutcome o) => o switch
    {
        FaultOutcome.MmioExit => "mmio_exit",
        FaultOutcome.MemoryFaultExit => "memory_fault_exit",
        FaultOutcome.InjectIabt => "inject_iabt",
        FaultOutcome.InjectDabt => "inject_dabt",
        _ => o.ToString().ToLowerInvariant(),
    };
}
