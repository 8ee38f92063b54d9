using Audit.Api.Cli;
using Audit.Projections.Embedded;
using Npgsql;

namespace Audit.Tests.Cli;

/// <summary>The last word on a failure no command handled: one line and a documented exit code, never a stack trace.</summary>
public sealed class FailuresTests
{
    private static (int Exit, string Err) Report(Exception ex)
    {
        var err = new StringWriter();
        return (Failures.Report(ex, err), err.ToString());
    }

    private static Exception Thrown(Exception ex)
    {
        try
        {
            throw ex;
        }
        catch (Exception caught)
        {
            return caught;
        }
    }

    [Fact]
    public void A_bug_is_one_line_exit_70_without_a_stack_trace()
    {
        var (exit, err) = Report(Thrown(new InvalidOperationException("two\nlines")));
        Assert.Equal(70, exit);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("audit: unexpected error (InvalidOperationException: two lines)", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("57P01")]
    [InlineData("57P02")]
    [InlineData("08006")]
    [InlineData("53300")]
    public void A_server_that_went_away_is_exit_3_asking_to_run_again(string sqlState)
    {
        var (exit, err) = Report(Thrown(new PostgresException("terminating connection", "FATAL", "FATAL", sqlState)));
        Assert.Equal(3, exit);
        Assert.Contains("run the command again", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void A_lost_connection_an_unreachable_database_and_an_interrupt_have_their_own_codes()
    {
        Assert.Equal(3, Report(new NpgsqlException("Exception while writing to stream", new IOException("broken pipe"))).Exit);
        Assert.Equal(3, Report(new DatabaseUnavailableException("no PostgreSQL server binaries found")).Exit);
        Assert.Equal(130, Report(new OperationCanceledException()).Exit);
        Assert.Equal(2, Report(new PostgresException("unsupported Unicode escape sequence", "ERROR", "ERROR", "22P05")).Exit);
        Assert.Equal(70, Report(new PostgresException("syntax error", "ERROR", "ERROR", "42601")).Exit);
    }

    [Fact]
    public async Task An_audit_home_that_cannot_be_a_folder_is_exit_3_naming_it_not_a_bug()
    {
        var file = Path.GetTempFileName();
        try
        {
            var ex = await Assert.ThrowsAsync<DatabaseUnavailableException>(() => new EmbeddedPostgres(file).EnsureStartedAsync());
            var (exit, err) = Report(ex);
            Assert.Equal(3, exit);
            Assert.Contains($"cannot use {file}", err, StringComparison.Ordinal);
            Assert.Contains("Set AUDIT_HOME", err, StringComparison.Ordinal);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
