using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Audit.Api.Cli;
using Audit.Api.Composition;
using Audit.Api.Http.Security;

namespace Audit.Api.Http;

public static class ServeCommand
{
    public static Command Build(CommandLine cli)
    {
        var urls = new Option<string>("--urls") { Description = "where to listen, ';'-separated (https:// needs --cert and --key)", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var open = new Option<bool>("--no-token-on-network") { Description = "listen beyond loopback without AUDIT_TOKEN: anyone who reaches the port reads and writes every run" };
        var cert = new Option<string?>("--cert") { Description = "PEM certificate (chain) for https:// URLs" };
        var key = new Option<string?>("--key") { Description = "PEM private key of --cert" };
        var cmd = new Command("serve", """
            the HTTP API (/openapi/v1.json) and the web UI at /.
            With AUDIT_TOKEN set, every request but /healthz and the UI's files needs 'Authorization: Bearer TOKEN'.
            A non-loopback address (0.0.0.0, ::, *, a LAN address, a host name) is refused without AUDIT_TOKEN
            unless --no-token-on-network is given. TLS: --urls https://HOST:PORT --cert cert.pem --key key.pem.
            Example: AUDIT_TOKEN=$(openssl rand -hex 24) audit serve --urls https://0.0.0.0:8443 --cert c.pem --key k.pem
            """)
        {
            urls, open, cert, key,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var options = HttpOptions.FromEnvironment();
            var listen = parse.GetValue(urls)!;
            if (Refusal(listen, options.Token is not null, parse.GetValue(open)) is { } refusal)
            {
                await cli.Err.WriteLineAsync("audit: " + refusal);
                return ExitCodes.BadInput;
            }

            if (HttpOptions.MaxBodyProblem(Environment.GetEnvironmentVariable("AUDIT_MAX_BODY_BYTES")) is { } limit)
            {
                await cli.Err.WriteLineAsync("audit: " + limit);
                return ExitCodes.BadInput;
            }

            var (certificate, certError) = LoadCertificate(listen, parse.GetValue(cert), parse.GetValue(key));
            if (certError is not null)
            {
                await cli.Err.WriteLineAsync("audit: " + certError);
                return ExitCodes.BadInput;
            }

            return await cli.WithMediator(parse, async (_, sp) =>
            {
                var ds = sp.GetRequiredService<Npgsql.NpgsqlDataSource>();
                var app = HttpApp.Build([], ds, listen, options with { Certificate = certificate, Recovery = EmbeddedRecovery(cli, parse, ds), Log = m => cli.Err.WriteLine(m) });
                try
                {
                    await app.StartAsync(ct);
                }
                catch (IOException ex)
                {
                    await cli.Err.WriteLineAsync($"audit: cannot listen on {listen}: {ex.Message}");
                    return ExitCodes.BadInput;
                }

                await cli.Out.WriteLineAsync($"serving on {listen}{(options.Token is null ? "" : " (AUDIT_TOKEN required)")} (Ctrl-C stops)");
                await app.WaitForShutdownAsync(ct);
                await app.DisposeAsync();
                return ExitCodes.Ok;
            }, ct);
        });
        return cmd;
    }

    /// <summary>On the embedded database, a server that dies under serve is recovered as a new command would; pooled connections to the dead one are dropped.</summary>
    private static DatabaseRecovery? EmbeddedRecovery(CommandLine cli, ParseResult parse, Npgsql.NpgsqlDataSource ds)
    {
        if (parse.GetValue(CommandLine.Db) is not null || Environment.GetEnvironmentVariable("AUDIT_DB") is { Length: > 0 })
        {
            return null;
        }

        return new DatabaseRecovery(async ct =>
        {
            await new Projections.Embedded.EmbeddedPostgres(Projections.Embedded.EmbeddedPostgres.DefaultHome()).EnsureStartedAsync(m => cli.Err.WriteLine(m), ct);
            ds.Clear();
        });
    }

    /// <summary>Why serve will not listen on <paramref name="urls"/>, or null.</summary>
    public static string? Refusal(string urls, bool hasToken, bool allowOpen)
    {
        var exposed = ListenAddresses.OnNetwork(urls);
        if (exposed.Count == 0 || hasToken || allowOpen)
        {
            return null;
        }

        return $"refusing to listen on {string.Join(", ", exposed)} without a token: other machines could reach it, and every run "
            + "(host addresses, VM memory layouts) would be theirs to read and write. Set AUDIT_TOKEN (clients send "
            + "'Authorization: Bearer TOKEN'), or listen on 127.0.0.1, or pass --no-token-on-network on a network you trust.";
    }

    private static (X509Certificate2? Certificate, string? Error) LoadCertificate(string urls, string? certFile, string? keyFile)
    {
        var https = ListenAddresses.Split(urls).Any(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase));
        if (certFile is null && keyFile is null)
        {
            return (null, https ? "an https:// URL needs --cert FILE and --key FILE (PEM)" : null);
        }

        if (certFile is null || keyFile is null)
        {
            return (null, "--cert and --key go together: the PEM certificate and its private key");
        }

        if (!https)
        {
            return (null, "--cert and --key serve TLS on https:// URLs; --urls has none (e.g. --urls https://127.0.0.1:5443)");
        }

        try
        {
            return (X509Certificate2.CreateFromPemFile(certFile, keyFile), null);
        }
        catch (Exception ex) when (ex is IOException or CryptographicException or ArgumentException or UnauthorizedAccessException)
        {
            return (null, $"cannot load the certificate {certFile} with key {keyFile}: {ex.Message}");
        }
    }
}
