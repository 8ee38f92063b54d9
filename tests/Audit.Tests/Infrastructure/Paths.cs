namespace Audit.Tests.Infrastructure;

public static class Paths
{
    /// <summary>The repository root (the folder holding Audit.sln).</summary>
    public static string Repo { get; } = FindRepo();

    public static string Samples => Path.Combine(Repo, "samples");

    private static string FindRepo()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Audit.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("Audit.sln not found above " + AppContext.BaseDirectory);
    }
}
