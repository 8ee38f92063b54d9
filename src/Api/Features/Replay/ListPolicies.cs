using Audit.Domain.Model;
using MediatR;

namespace Audit.Api.Features.Replay;

/// <summary>The kernel policies a run can be replayed under (the web UI's compare menu).</summary>
public sealed record ListPolicies : IRequest<IReadOnlyList<PolicyView>>;

/// <summary>One policy as GET /policies shows it: id, architecture and the releases that decide alike.</summary>
public sealed record PolicyView(string Id, string Arch, string Kernels);

/// <summary>
/// One policy per span of releases in which no rule of the flavour starts or stops (any release in the span
/// decides alike), then the never-merged proposals.
/// </summary>
public sealed class ListPoliciesHandler : IRequestHandler<ListPolicies, IReadOnlyList<PolicyView>>
{
    public Task<IReadOnlyList<PolicyView>> Handle(ListPolicies request, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<PolicyView>>(Policies.Flavours.SelectMany(Spans)
            .Concat([View(Policies.Arm64MemslotFlag, "what-if (series v4-v6, never merged)"), View(Policies.Arm64ForceCheck, "what-if (seed 000 sketch, never merged)")])
            .ToList());

    private static IEnumerable<PolicyView> Spans(Flavour flavour)
    {
        var starts = Policies.Boundaries(flavour);
        for (var i = 0; i < starts.Count; i++)
        {
            var last = i + 1 < starts.Count ? starts[i + 1].Previous : KernelVersion.Newest;
            yield return View(Policies.At(flavour, starts[i]), last == starts[i] ? $"{starts[i]}" : $"{starts[i]} - {last}");
        }
    }

    private static PolicyView View(Policy p, string kernels) => new(p.Id, p.Arch == Domain.Events.Arch.Arm64 ? "arm64" : "x86_64", kernels);
}
