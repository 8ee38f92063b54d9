using System.CommandLine;
using Audit.Projections.Embedded;

namespace Audit.Api.Cli;

/// <summary>`audit db status|stop`: the embedded cluster under $AUDIT_HOME.</summary>
public static class DbCommand
{
    public static Command Build(CommandLine cli)
    {
        var db = new Command("db", "the embedded PostgreSQL cluster under $AUDIT_HOME (started by any command on first use)");
        var status = new Command("status", "where the embedded cluster lives and whether it runs");
        status.SetAction(_ =>
        {
            var s = new EmbeddedPostgres(EmbeddedPostgres.DefaultHome()).Status();
            cli.Out.WriteLine($"home:    {s.Home}");
            cli.Out.WriteLine($"cluster: {(s.Initialized ? s.DataDir : "not created yet (any command creates it)")}");
            cli.Out.WriteLine($"server:  {(s.Running ? $"running on 127.0.0.1:{s.Port}, socket in {s.SocketDir}"
                : s.DeadServer is { } pid ? $"not running: it died (pid {pid} left its postmaster.pid); the next command recovers it" : "stopped")}");
            if (s.BinDir is not null)
            {
                cli.Out.WriteLine($"binaries: {s.BinDir}");
            }

            return ExitCodes.Ok;
        });
        var stop = new Command("stop", "stop the embedded server (data is kept; the next command starts it again)");
        stop.SetAction(_ =>
        {
            try
            {
                var stopped = new EmbeddedPostgres(EmbeddedPostgres.DefaultHome()).Stop();
                cli.Out.WriteLine(stopped ? "stopped" : "not running");
                return ExitCodes.Ok;
            }
            catch (DatabaseUnavailableException ex)
            {
                cli.Err.WriteLine("audit: " + ex.Message);
                return ExitCodes.DatabaseUnavailable;
            }
        });
        db.Add(status);
        db.Add(stop);
        db.Add(Features.DbCheck.DbCheckCommand.Build(cli));
        return db;
    }
}
