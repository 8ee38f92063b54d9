using Audit.Api.Features.Shared;
using Audit.Api.Http;
using Audit.Api.Http.Security;
using Microsoft.AspNetCore.Http;

namespace Audit.Tests.Security;

/// <summary>What serve exposes and to whom; pure, no database.</summary>
public sealed class ServeSecurityTests
{
    [Theory]
    [InlineData("http://0.0.0.0:5080")]
    [InlineData("http://[::]:5080")]
    [InlineData("http://*:5080")]
    [InlineData("http://+:5080")]
    [InlineData("http://192.168.1.20:5080")]
    [InlineData("https://audit.example:443")]
    [InlineData("http://127.0.0.1:5080;http://0.0.0.0:5081")]
    public void Serve_refuses_a_non_loopback_address_without_a_token_and_says_why(string urls)
    {
        var refusal = ServeCommand.Refusal(urls, hasToken: false, allowOpen: false);
        Assert.NotNull(refusal);
        Assert.Contains("AUDIT_TOKEN", refusal, StringComparison.Ordinal);
        Assert.Contains("--no-token-on-network", refusal, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1:5080", refusal, StringComparison.Ordinal);
        Assert.Null(ServeCommand.Refusal(urls, hasToken: true, allowOpen: false));
        Assert.Null(ServeCommand.Refusal(urls, hasToken: false, allowOpen: true));
    }

    [Theory]
    [InlineData("http://127.0.0.1:5080")]
    [InlineData("http://127.8.9.10:5080")]
    [InlineData("http://localhost:5080")]
    [InlineData("http://[::1]:5080")]
    [InlineData("https://127.0.0.1:5443/")]
    [InlineData("http://unix:/run/audit.sock")]
    public void Serve_listens_on_loopback_without_a_token(string urls) =>
        Assert.Null(ServeCommand.Refusal(urls, hasToken: false, allowOpen: false));

    [Fact]
    public async Task The_serve_command_exits_2_on_a_network_address_without_a_token_before_touching_a_database()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var exit = await Audit.Api.Cli.CommandLine.RunAsync(["serve", "--urls", "http://0.0.0.0:1", "--db", "Host=/nonexistent"], o, e);
        Assert.Equal(2, exit);
        Assert.StartsWith("audit: refusing to listen on http://0.0.0.0:1 without a token", e.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://127.0.0.1:5443", null, null, "needs --cert FILE and --key FILE")]
    [InlineData("https://127.0.0.1:5443", "/nonexistent/c.pem", null, "go together")]
    [InlineData("http://127.0.0.1:5080", "/nonexistent/c.pem", "/nonexistent/k.pem", "https:// URLs")]
    [InlineData("https://127.0.0.1:5443", "/nonexistent/c.pem", "/nonexistent/k.pem", "cannot load the certificate")]
    public async Task Tls_options_that_cannot_work_exit_2_with_the_reason(string urls, string? cert, string? key, string reason)
    {
        var e = new StringWriter();
        string[] args = ["serve", "--urls", urls, "--db", "Host=/nonexistent", .. cert is null ? Array.Empty<string>() : ["--cert", cert], .. key is null ? Array.Empty<string>() : ["--key", key]];
        Assert.Equal(2, await Audit.Api.Cli.CommandLine.RunAsync(args, new StringWriter(), e));
        Assert.Contains(reason, e.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/", true)]
    [InlineData("GET", "/index.html", true)]
    [InlineData("HEAD", "/healthz", true)]
    [InlineData("GET", "/ui/app.js", true)]
    [InlineData("GET", "/app.css", true)]
    [InlineData("POST", "/", false)]
    [InlineData("GET", "/runs", false)]
    [InlineData("GET", "/runs/x.js", false)]
    [InlineData("GET", "/openapi/v1.json", false)]
    [InlineData("GET", "/ui/../runs", false)]
    [InlineData("POST", "/ui/x.js", false)]
    public void Only_the_health_check_and_the_ui_files_are_public(string method, string path, bool expected)
    {
        var ctx = new DefaultHttpContext();
        ctx.Request.Method = method;
        ctx.Request.Path = path;
        Assert.Equal(expected, PublicPaths.IsPublic(ctx.Request));
    }

    [Fact]
    public void Tokens_match_only_exactly()
    {
        Assert.True(Tokens.Matches("s3cret", "s3cret"));
        Assert.False(Tokens.Matches("s3cre", "s3cret"));
        Assert.False(Tokens.Matches("s3cretx", "s3cret"));
        Assert.False(Tokens.Matches("S3cret", "s3cret"));
        Assert.False(Tokens.Matches(null, "s3cret"));
    }

    [Theory]
    [InlineData("gh", true)]
    [InlineData("gh200-gpu_passthrough.2", true)]
    [InlineData("", false)]
    [InlineData("-x", false)]
    [InlineData(".hidden", false)]
    [InlineData("a b", false)]
    [InlineData("a/b", false)]
    [InlineData("a\nb", false)]
    [InlineData("é", false)]
    public void Run_ids_are_letters_digits_dot_dash_and_underscore(string run, bool valid)
    {
        Assert.Equal(valid, RunIds.Problem(run) is null);
        Assert.NotNull(RunIds.Problem(new string('a', RunIds.MaxLength + 1)));
        Assert.Null(RunIds.Problem(new string('a', RunIds.MaxLength)));
    }

    [Fact]
    public async Task A_bad_run_id_on_the_command_line_is_exit_2_naming_the_rule()
    {
        var e = new StringWriter();
        Assert.Equal(2, await Audit.Api.Cli.CommandLine.RunAsync(["why", "a;b", "0x1000", "--db", "Host=/nonexistent"], new StringWriter(), e));
        Assert.Contains("may hold only letters, digits", e.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("state", "BAD")]
    [InlineData("why", "BAD", "0x1000")]
    [InlineData("history", "BAD", "0x1000")]
    [InlineData("replay", "BAD", "--policy", "arm64/5.14")]
    [InlineData("replay", "gh", "--policy", "arm64/5.14", "--save", "BAD")]
    [InlineData("diff", "gh", "BAD")]
    [InlineData("export", "BAD")]
    [InlineData("rebuild", "BAD")]
    [InlineData("lint", "BAD")]
    [InlineData("bisect", "BAD")]
    [InlineData("db", "check", "BAD")]
    [InlineData("ingest", "trace.ndjson", "--run", "BAD")]
    public async Task Every_command_that_names_a_run_refuses_a_bad_id_with_exit_2_before_touching_a_database(params string[] args)
    {
        foreach (var bad in new[] { "../x", "a b", "\u00fcn\u00ef", new string('a', RunIds.MaxLength + 1), "" })
        {
            var e = new StringWriter();
            string[] argv = [.. args.Select(a => a == "BAD" ? bad : a), "--db", "Host=/nonexistent"];
            Assert.Equal(2, await Audit.Api.Cli.CommandLine.RunAsync(argv, new StringWriter(), e));
            Assert.Contains("run id", e.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Endpoints_configured_outside_urls_are_ignored_so_the_token_check_of_urls_holds()
    {
        // A Kestrel__Endpoints__* variable or an appsettings.json would otherwise replace --urls unchecked.
        await using var ds = Npgsql.NpgsqlDataSource.Create("Host=/nonexistent");
        var port = Audit.Tests.Drills.HostProcess.FreePort();
        await using var app = HttpApp.Build([$"--Kestrel:Endpoints:Open:Url=http://0.0.0.0:{port}"], ds, "http://127.0.0.1:0", new HttpOptions(null, 1024));
        await app.StartAsync();
        var urls = app.Urls.ToList();
        await app.StopAsync();
        var url = Assert.Single(urls);
        Assert.StartsWith("http://127.0.0.1:", url, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("abc")]
    [InlineData("99999999999999999999")]
    public void A_body_limit_that_is_not_a_positive_number_of_bytes_is_refused_naming_it(string value)
    {
        Assert.Contains($"(got '{value}')", HttpOptions.MaxBodyProblem(value), StringComparison.Ordinal);
        Assert.Null(HttpOptions.MaxBodyProblem("1048576"));
        Assert.Null(HttpOptions.MaxBodyProblem(null));
    }
}
