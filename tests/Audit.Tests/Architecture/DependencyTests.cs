using System.Reflection;

namespace Audit.Tests.Architecture;

public sealed class DependencyTests
{
    [Fact]
    public void Domain_references_only_the_base_class_library()
    {
        var refs = typeof(Audit.Domain.Addresses.Gpa).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.NotEmpty(refs);
        Assert.All(refs, name => Assert.True(
            name is "System.Runtime" or "System.Collections" or "System.Collections.Immutable" or "System.Linq" or "System.Runtime.InteropServices" or "System.Memory"
                || name.StartsWith("System.", StringComparison.Ordinal) && !name.StartsWith("System.Text.Json", StringComparison.Ordinal),
            $"Domain references {name}"));
        Assert.DoesNotContain(refs, n => n.StartsWith("Npgsql", StringComparison.Ordinal) || n.StartsWith("MediatR", StringComparison.Ordinal) || n.StartsWith("Microsoft.", StringComparison.Ordinal));
    }

    [Fact]
    public void Dependencies_run_one_way_and_only_projections_reference_npgsql()
    {
        static IEnumerable<string> Refs(Assembly a) => a.GetReferencedAssemblies().Select(r => r.Name!);
        var domain = typeof(Audit.Domain.Addresses.Gpa).Assembly;
        var projections = typeof(Audit.Projections.Storage.EventStore).Assembly;
        var api = typeof(Audit.Api.Cli.CommandLine).Assembly;

        Assert.DoesNotContain("Audit.Projections", Refs(domain));
        Assert.DoesNotContain("Audit.Api", Refs(projections));
        Assert.Contains("Npgsql", Refs(projections));
        Assert.DoesNotContain("Audit.Api", Refs(domain));

        // Api talks to the database only through Projections (it may name Npgsql types it is handed, but holds no SQL).
        var sqlInApi = Directory.GetFiles(Path.Combine(Infrastructure.Paths.Repo, "src", "Api"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Where(f => File.ReadAllText(f).Contains("NpgsqlCommand", StringComparison.Ordinal));
        Assert.Empty(sqlInApi);
    }

    [Fact]
    public void The_shipped_host_references_neither_marten_nor_the_peers_bench()
    {
        // ADR 0010: Marten is measured beside our store, from a project of its own, and never shipped.
        var api = typeof(Audit.Api.Cli.CommandLine).Assembly;
        var loaded = api.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.Contains("Audit.Projections", loaded);
        Assert.DoesNotContain(loaded, n => n.StartsWith("Marten", StringComparison.Ordinal) || n.StartsWith("JasperFx", StringComparison.Ordinal) || n.StartsWith("Weasel", StringComparison.Ordinal));

        foreach (var project in new[] { "src/Api/Audit.Api.csproj", "src/Projections/Audit.Projections.csproj", "src/Domain/Audit.Domain.csproj" })
        {
            var text = File.ReadAllText(Path.Combine(Infrastructure.Paths.Repo, project));
            Assert.DoesNotContain("Marten", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("Audit.Bench.Peers", text, StringComparison.Ordinal);
        }

        var peers = File.ReadAllText(Path.Combine(Infrastructure.Paths.Repo, "bench/Audit.Bench.Peers/Audit.Bench.Peers.csproj"));
        Assert.Contains("<PackageReference Include=\"Marten\"", peers, StringComparison.Ordinal);
    }
}
