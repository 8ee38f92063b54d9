namespace Audit.Api.Cli;

/// <summary>interfaces.md: 0 success, 1 nothing found, 2 bad input, 3 database unreachable, 4 lint findings.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int NotFound = 1;
    public const int BadInput = 2;
    public const int DatabaseUnavailable = 3;

    /// <summary>`audit lint`: a finding at or above --fail-on.</summary>
    public const int LintFindings = 4;

    /// <summary>A bug (sysexits EX_SOFTWARE).</summary>
    public const int Internal = 70;
}
