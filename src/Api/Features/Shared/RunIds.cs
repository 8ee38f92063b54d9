namespace Audit.Api.Features.Shared;

/// <summary>
/// What a run id may be, checked once where it enters (a command-line argument, an HTTP route):
/// 1-128 characters, letters, digits, '.', '_' and '-', starting with a letter or digit. Ids end up
/// in file names, URLs and messages, so nothing that needs quoting gets in.
/// </summary>
public static class RunIds
{
    public const int MaxLength = 128;

    /// <summary>Why <paramref name="run"/> is not a run id, or null when it is one.</summary>
    public static string? Problem(string? run)
    {
        if (string.IsNullOrEmpty(run))
        {
            return "a run id is needed";
        }

        if (run.Length > MaxLength)
        {
            return $"run id '{run[..20]}...' is {run.Length} characters long; at most {MaxLength}";
        }

        if (!char.IsAsciiLetterOrDigit(run[0]) || !run.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            return $"run id '{Printable(run)}' may hold only letters, digits, '.', '_' and '-', and starts with a letter or digit";
        }

        return null;
    }

    private static string Printable(string s) => string.Concat(s.Select(c => char.IsControl(c) ? '?' : c));
}
