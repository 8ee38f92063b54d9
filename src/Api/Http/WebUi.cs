using System.Collections.Frozen;
using System.Reflection;

namespace Audit.Api.Http;

/// <summary>
/// The web UI's static files (src/Api/Web, ES modules with no build step: ADR 0012), embedded in the host
/// so `./audit serve` needs nothing beside its dll. Served at `/` and `/ui/NAME`; they hold no data, so
/// they stay open when AUDIT_TOKEN guards the API (the page asks for the token when a call returns 401).
/// </summary>
public static class WebUi
{
    private const string Prefix = "web/";

    private static readonly FrozenDictionary<string, string> Types = new Dictionary<string, string>
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    }.ToFrozenDictionary();

    /// <summary>Every file of the page, read once: a few tens of kilobytes.</summary>
    private static readonly Lazy<FrozenDictionary<string, byte[]>> Files = new(Load);

    public static IEndpointRouteBuilder MapUi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", (HttpContext ctx) => Serve(ctx, "index.html")).ExcludeFromDescription();
        app.MapGet("/ui/{name}", (string name, HttpContext ctx) => Serve(ctx, name)).ExcludeFromDescription();
        return app;
    }

    /// <summary>The names of the embedded files (for tests and the bench).</summary>
    public static IReadOnlyCollection<string> Names => Files.Value.Keys;

    private static IResult Serve(HttpContext ctx, string name)
    {
        if (!Files.Value.TryGetValue(name, out var bytes) || !Types.TryGetValue(Path.GetExtension(name), out var type))
        {
            return Results.Problem(title: "not found", detail: $"the web UI has no file '{name}'", statusCode: 404);
        }

        var headers = ctx.Response.Headers;
        // Offline by construction: the page may load nothing but itself and talk to nothing but this server.
        headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";
        headers.XContentTypeOptions = "nosniff";
        // Revalidated each load, so a rebuilt host never runs a stale module beside a fresh one.
        headers.CacheControl = "no-cache";
        return Results.Bytes(bytes, type);
    }

    private static FrozenDictionary<string, byte[]> Load()
    {
        var asm = Assembly.GetExecutingAssembly();
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var resource in asm.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var s = asm.GetManifestResourceStream(resource)!;
            using var m = new MemoryStream();
            s.CopyTo(m);
            files[resource[Prefix.Length..]] = m.ToArray();
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
