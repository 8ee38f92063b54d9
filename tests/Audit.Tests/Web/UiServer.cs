using Audit.Api.Features.Demo;
using Audit.Api.Features.Ingest;
using Audit.Api.Http;
using Audit.Tests.Infrastructure;
using MediatR;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Npgsql;

namespace Audit.Tests.Web;

/// <summary>
/// The real host on a loopback ephemeral port over a schema holding the demo runs, and Debian's Chromium
/// driven by Playwright (its own browser download cannot work here). Without Chromium the browser tests
/// skip and say why; every other failure fails them.
/// </summary>
public sealed class UiServer : IAsyncLifetime
{
    public const string Token = "ui-t0ken";

    /// <summary>The gh trace again, decided under arm64/5.14.</summary>
    public const string SecondRun = "gh-on-5.14";

    private NpgsqlDataSource? _dataSource;
    private string _schema = "";
    private WebApplication? _app;
    private WebApplication? _guarded;
    private IPlaywright? _playwright;

    /// <summary>Why the browser tests cannot run here, or null.</summary>
    public string? Problem { get; private set; }

    public string BaseUrl { get; private set; } = "";

    /// <summary>The same data behind a server with AUDIT_TOKEN set.</summary>
    public string GuardedUrl { get; private set; } = "";

    public IBrowser Browser { get; private set; } = null!;

    public HttpClient Http { get; } = new();

    public static string ChromiumPath => Environment.GetEnvironmentVariable("AUDIT_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    /// <summary>Where each view's screenshot goes for a reviewer: TestResults/ui-screenshots at the repository root.</summary>
    public static string Screenshots { get; } = Path.Combine(Paths.Repo, "TestResults", "ui-screenshots");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            Problem = $"no Chromium at {ChromiumPath}: ./test.sh installs Debian's chromium package when run as root (apt-get install chromium), or set AUDIT_CHROMIUM";
            return;
        }

        _schema = await TestDatabase.CreateSchemaAsync("ui");
        _dataSource = NpgsqlDataSource.Create(_schema);
        _app = HttpApp.Build([], _dataSource, "http://127.0.0.1:0", new HttpOptions(null, 64L << 20));
        await _app.StartAsync();
        BaseUrl = _app.Urls.First();
        _guarded = HttpApp.Build([], _dataSource, "http://127.0.0.1:0", new HttpOptions(Token, 64L << 20));
        await _guarded.StartAsync();
        GuardedUrl = _guarded.Urls.First();
        var mediator = _app.Services.GetRequiredService<IMediator>();
        var error = await DemoCommand.ImportSamplesAsync(mediator, TextWriter.Null, CancellationToken.None);
        Assert.Null(error);
        // The same GH200 trace decided under 5.14: a second run of the workload for the diff view.
        var second = await mediator.Send(new IngestFiles([Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson")], SecondRun, Policy: "arm64/5.14"));
        Assert.Null(second.Error);

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Args = ["--no-sandbox"], Headless = true });
        Directory.CreateDirectory(Screenshots);
    }

    /// <summary>A fresh page on a 1280-pixel laptop screen; script errors it raises are collected in <paramref name="errors"/>.</summary>
    public async Task<IPage> PageAsync(List<string> errors)
    {
        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
        var page = await context.NewPageAsync();
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) =>
        {
            if (m.Type == "error" && !m.Text.Contains("401", StringComparison.Ordinal) && !m.Text.Contains("404", StringComparison.Ordinal))
            {
                errors.Add(m.Text);
            }
        };
        return page;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        _playwright?.Dispose();
        foreach (var app in new[] { _app, _guarded })
        {
            if (app is not null)
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }

        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
            await TestDatabase.DropSchemaAsync(_schema);
        }

        Http.Dispose();
    }
}
