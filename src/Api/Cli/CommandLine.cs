using System.CommandLine;
using Audit.Api.Composition;
using Audit.Projections.Embedded;
using MediatR;
using Npgsql;

namespace Audit.Api.Cli;

/// <summary>
/// The `audit` command line. Every command that reads or writes data opens the database the
/// same way (--db, AUDIT_DB, or the embedded cluster) and sends a MediatR request; no logic here.
/// </summary>
public sealed class CommandLine(TextWriter stdout, TextWriter stderr)
{
    public static readonly Option<string?> Db = new("--db")
    {
        Description = "PostgreSQL connection string (else $AUDIT_DB, else the embedded cluster under $AUDIT_HOME)",
        Recursive = true,
    };

    public TextWriter Out => stdout;
    public TextWriter Err => stderr;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        var cli = new CommandLine(stdout, stderr);
        var root = cli.Build();
        ValidateRunIds(root);
        try
        {
            // Our handler, not the library's: it would print the stack trace and exit 1.
            var parse = root.Parse(args);
            var exit = await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false }, ct);

            // A command line that does not parse is bad input (the library says 1, our "nothing found").
            return parse.Errors.Count > 0 ? ExitCodes.BadInput : exit;
        }
        catch (Exception ex)
        {
            return Failures.Report(ex, stderr);
        }
    }

    /// <summary>Every RUN argument and --run or --save option (replay stores a run under that name) of every command takes only what <see cref="Features.Shared.RunIds"/> allows.</summary>
    private static void ValidateRunIds(Command command)
    {
        foreach (var arg in command.Arguments.Where(a => a.Name.StartsWith("RUN", StringComparison.Ordinal) && a.ValueType == typeof(string)))
        {
            arg.Validators.Add(CheckRunIds);
        }

        foreach (var opt in command.Options.Where(o => o.Name is "--run" or "--save"))
        {
            opt.Validators.Add(CheckRunIds);
        }

        foreach (var sub in command.Subcommands)
        {
            ValidateRunIds(sub);
        }
    }

    private static void CheckRunIds(System.CommandLine.Parsing.SymbolResult r)
    {
        foreach (var token in r.Tokens)
        {
            if (Features.Shared.RunIds.Problem(token.Value) is { } p)
            {
                r.AddError(p);
            }
        }
    }

    public RootCommand Build()
    {
        var root = new RootCommand("""
            memory-attribute audit: stores the memory decisions of a KVM run as events and explains them.

            Start with `audit demo`, then `audit runs`. Data goes to --db / $AUDIT_DB, or by default to a
            private PostgreSQL cluster under $AUDIT_HOME (~/.local/share/audit) started on first use.
            Exit codes: 0 ok, 1 nothing found, 2 bad input (FILE:LINE: reason), 3 database unreachable,
            4 lint findings, 70 an unexpected failure (a bug: one line, AUDIT_DEBUG=1 adds the stack trace).
            """);
        root.Add(Db);
        root.Add(Features.Ingest.IngestCommand.Build(this));
        root.Add(Features.Capture.CaptureCommand.Build(this));
        root.Add(Features.Runs.RunsCommand.Build(this));
        root.Add(Features.State.StateCommand.Build(this));
        root.Add(Features.Why.WhyCommand.Build(this));
        root.Add(Features.History.HistoryCommand.Build(this));
        root.Add(Features.Replay.ReplayCommand.Build(this));
        root.Add(Features.Diff.DiffCommand.Build(this));
        root.Add(Features.Export.ExportCommand.Build(this));
        root.Add(Features.Rebuild.RebuildCommand.Build(this));
        root.Add(Features.Demo.DemoCommand.Build(this));
        root.Add(DbCommand.Build(this));
        root.Add(Http.ServeCommand.Build(this));
        root.Add(Features.Bench.BenchCommand.Build(this));
        root.Add(Features.Lint.LintCommand.Build(this));
        root.Add(Features.Bisect.BisectCommand.Build(this));
        return root;
    }

    /// <summary>
    /// The shape of every read command: send the query, report not-found or bad input, then print the
    /// HTTP body with --json or the human form.
    /// </summary>
    public Task<int> QueryAsync<T>(ParseResult parse, Option<bool> json, Func<IMediator, Task<Features.Shared.QueryResult<T>>> send, Func<T, Task> human, CancellationToken ct) =>
        WithMediator(parse, async (mediator, _) =>
        {
            var result = await send(mediator);
            if (await ReportAsync(result) is { } code)
            {
                return code;
            }

            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(Output.ToJson(result.Value));
            }
            else
            {
                await human(result.Value!);
            }

            return ExitCodes.Ok;
        }, ct);

    /// <summary>Prints a query's error and returns its exit code, or null when there is an answer to print.</summary>
    public async Task<int?> ReportAsync<T>(Features.Shared.QueryResult<T> result)
    {
        switch (result.Status)
        {
            case Features.Shared.QueryStatus.NotFound:
                await stderr.WriteLineAsync("audit: " + result.Error);
                return ExitCodes.NotFound;
            case Features.Shared.QueryStatus.BadInput:
                await stderr.WriteLineAsync("audit: " + result.Error);
                return ExitCodes.BadInput;
            default:
                return null;
        }
    }

    /// <summary>Opens the database, builds the handlers and runs <paramref name="body"/>; maps an unreachable database to exit 3.</summary>
    public async Task<int> WithMediator(ParseResult parse, Func<IMediator, IServiceProvider, Task<int>> body, CancellationToken ct)
    {
        NpgsqlDataSource ds;
        try
        {
            ds = await Database.OpenAsync(parse.GetValue(Db), stderr, ct);
        }
        catch (Exception ex)
        {
            return Failures.Report(ex, stderr);
        }

        await using (ds)
        {
            var services = new ServiceCollection().AddAudit(ds);
            await using var sp = services.BuildServiceProvider();
            try
            {
                return await body(sp.GetRequiredService<IMediator>(), sp);
            }
            catch (Exception ex)
            {
                return Failures.Report(ex, stderr);
            }
        }
    }
}
