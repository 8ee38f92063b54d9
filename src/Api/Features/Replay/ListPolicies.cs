using Audit.Domain.Model;
using MediatR;

namespace Audit.Api.Features.Replay;

/// <summary>The kernel policies a run can be replayed under (the web UI's compare menu).</summary>
public sealed record ListPolicies : IRequest<IReadOnlyList<PolicyView>>;

/// <summary>One policy as GET /policies shows it: id, architecture and the kernels it models.</summary>
public sealed record PolicyView(string Id, string Arch, string Kernels);

public sealed class ListPoliciesHandler : IRequestHandler<ListPolicies, IReadOnlyList<PolicyView>>
{
    public Task<IReadOnlyList<PolicyView>> Handle(ListPolicies request, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<PolicyView>>(Policies.All
            .Select(p => new PolicyView(p.Id, p.Arch == Domain.Events.Arch.Arm64 ? "arm64" : "x86_64", p.Kernels)).ToList());
}
