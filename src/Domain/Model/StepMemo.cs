using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>
/// The last explanation steps one call site made. Steps are immutable, so decisions may share one; a step
/// is reused only when its rule, its text and every fact are the very objects the caller passes (a
/// reference compare, no hashing), so a shared step says exactly what a new one would.
/// </summary>
/// <remarks>
/// A few steps are kept, not one: a run's faults move between its VMAs and memslots, and each cites its
/// own facts. Call sites are static and runs are decided on many threads: each slot is one reference,
/// read and replaced whole, and a thread that loses a race only makes a step another thread made too.
/// </remarks>
public sealed class StepMemo
{
    private const int Slots = 8;
    private readonly ExplanationStep?[] _steps = new ExplanationStep?[Slots];
    private int _next;

    internal ExplanationStep For(Rule rule, string text, ReadOnlySpan<Fact> facts)
    {
        for (var i = 0; i < Slots; i++)
        {
            if (Volatile.Read(ref _steps[i]) is { } held && Matches(held, rule.Id, text, facts))
            {
                return held;
            }
        }

        var step = new ExplanationStep(rule.Id, text, ValueList<Fact>.Own(facts.ToArray()));
        var slot = (int)((uint)Interlocked.Increment(ref _next) % Slots);
        Volatile.Write(ref _steps[slot], step);
        return step;
    }

    private static bool Matches(ExplanationStep step, string rule, string text, ReadOnlySpan<Fact> facts)
    {
        if (!ReferenceEquals(step.Text, text) || !ReferenceEquals(step.Rule, rule))
        {
            return false;
        }

        var held = step.Facts.Items.AsSpan();
        if (held.Length != facts.Length)
        {
            return false;
        }

        for (var i = 0; i < held.Length; i++)
        {
            if (!ReferenceEquals(held[i], facts[i]))
            {
                return false;
            }
        }

        return true;
    }
}
