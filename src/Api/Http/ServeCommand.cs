using System.CommandLine;
using Audit.Api.Cli;
using Audit.Api.Composition;
using Audit.Projections.Embedded;
using Npgsql;

namespace Audit.Api.Http;

public static class ServeCommand
{
    public static Command Build(CommandLine cli)
    {
        var urls = new Option<string>("--urls") { Description = "where to listen", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var cmd = new Command("serve", "the HTTP API (see docs and /openapi/v1.json); writes need a bearer token when AUDIT_TOKEN is set") { urls };
        cmd.SetAction(async (parse, ct) =>
        {
            NpgsqlDataSource ds;
            try
            {
                ds = await Database.OpenAsync(parse.GetValue(CommandLine.Db), cli.Err, ct);
            }
            catch (DatabaseUnavailableException ex)
            {
                await cli.Err.WriteLineAsync("audit: " + ex.Message);
                return ExitCodes.DatabaseUnavailable;
            }

            await using (ds)
            {
                var app = HttpApp.Build([], ds, parse.GetValue(urls));
                await cli.Out.WriteLineAsync($"serving on {parse.GetValue(urls)} (Ctrl-C stops)");
                await app.RunAsync(ct);
            }

            return ExitCodes.Ok;
        });
        return cmd;
    }
}
