using System.Net;

namespace Audit.Tests.Drills;

/// <summary>`audit serve` as a real process on a free loopback port, restartable after a kill.</summary>
public sealed class ServeProcess : IDisposable
{
    private readonly string[] _args;
    private readonly IReadOnlyDictionary<string, string>? _env;
    private HostProcess? _host;

    public ServeProcess(string[] args, IReadOnlyDictionary<string, string>? env = null)
    {
        _args = args;
        _env = env;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{HostProcess.FreePort()}"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public HttpClient Client { get; }

    public async Task StartAsync()
    {
        _host = HostProcess.Start(["serve", "--urls", Client.BaseAddress!.ToString().TrimEnd('/'), .. _args], _env);
        for (var i = 0; i < 600 && !_host.HasExited; i++)
        {
            try
            {
                using var r = await Client.GetAsync("/healthz");
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException("serve did not come up:\n" + _host.Err);
    }

    public void Kill() => _host?.Kill();

    public string Err => _host?.Err ?? "";

    public void Dispose()
    {
        _host?.Dispose();
        Client.Dispose();
    }
}
