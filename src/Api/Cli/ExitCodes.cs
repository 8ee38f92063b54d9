namespace Audit.Api.Cli;

/// <summary>interfaces.md: 0 success, 1 nothing found, 2 bad input, 3 database unreachable, 4 findings (lint, db check), 70 a bug (one line, no stack trace).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int NotFound = 1;
    public const int BadInput = 2;
    public const int DatabaseUnavailable = 3;

    /// <summary>Findings: `db check` found problems, or `lint` a finding at or above --fail-on.</summary>
    public const int Findings = 4;

    /// <summary>`audit lint`: a finding at or above --fail-on (the same code as <see cref="Findings"/>).</summary>
    public const int LintFindings = Findings;

    /// <summary>A bug (sysexits EX_SOFTWARE).</summary>
    public const int Internal = 70;

    /// <summary>Stopped by Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;
}
