using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint;

/// <summary>One recorded input with the decisions the engine recorded for it (each with its own seq).</summary>
public sealed record LintStep(long Seq, InputEvent Input, IReadOnlyList<Recorded> Derived)
{
    /// <summary>The recorded decision (fault, memslot or ioctl verdict) answering this input, if any.</summary>
    public DerivedEvent? Decision => Derived.Select(d => (DerivedEvent)d.Event).FirstOrDefault(d => d is FaultResolved or MemslotDecided or IoctlDecided);

    public IEnumerable<T> Of<T>() where T : DerivedEvent => Derived.Select(d => d.Event).OfType<T>();

    /// <summary>
    /// Walks a stored run in order and folds the recorded decisions into the state (Engine.Evolve),
    /// never deciding anew: lint judges what the engine decided when the run was stored.
    /// Each step is handed over with the state as it was just before that input.
    /// </summary>
    public static RunState Walk(Policy policy, IReadOnlyList<Recorded> events, Action<LintStep, RunState> visit)
    {
        var state = Engine.Start(policy);
        for (var i = 0; i < events.Count;)
        {
            if (events[i].Event is not InputEvent input)
            {
                i++;
                continue;
            }

            var seq = events[i].Seq;
            var derived = new List<Recorded>();
            for (i++; i < events.Count && events[i].Event is DerivedEvent; i++)
            {
                derived.Add(events[i]);
            }

            var step = new LintStep(seq, input, derived);
            visit(step, state);
            Engine.Evolve(state, seq, input, derived.Select(d => (DerivedEvent)d.Event).ToList());
        }

        return state;
    }
}
