namespace Audit.Api.Http.Security;

/// <summary>
/// What a request may fetch without the token when one is set: the health check and the web UI's
/// static files (the UI then asks for the token and sends it on every API call). Everything else,
/// reads included, needs it: reads show host addresses and VM memory layouts.
/// To serve the UI from elsewhere, change these three lists.
/// </summary>
public static class PublicPaths
{
    /// <summary>Exact paths.</summary>
    public static readonly IReadOnlySet<string> Exact = new HashSet<string>(StringComparer.Ordinal) { "/", "/index.html", "/healthz", "/favicon.ico" };

    /// <summary>Folders of static assets; every file below them is public.</summary>
    public static readonly IReadOnlyList<string> Folders = ["/ui/", "/assets/", "/static/"];

    /// <summary>Static files at the top level ("/app.js"): one path segment with one of these extensions.</summary>
    public static readonly IReadOnlySet<string> TopLevelExtensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".html", ".js", ".mjs", ".css", ".map", ".svg", ".png", ".ico", ".woff", ".woff2", ".webmanifest",
    };

    /// <summary>True for a GET or HEAD of a public path. API paths (/runs/..., /diff, /openapi/...) never are.</summary>
    public static bool IsPublic(HttpRequest req)
    {
        if (!HttpMethods.IsGet(req.Method) && !HttpMethods.IsHead(req.Method))
        {
            return false;
        }

        var path = req.Path.Value ?? "/";
        if (Exact.Contains(path))
        {
            return true;
        }

        // "/ui/../runs" is normalized by the server before routing, but a dot segment is refused here anyway.
        if (path.Contains("/..", StringComparison.Ordinal) || path.Contains("/./", StringComparison.Ordinal))
        {
            return false;
        }

        return Folders.Any(f => path.StartsWith(f, StringComparison.Ordinal))
            || (path.LastIndexOf('/') == 0 && TopLevelExtensions.Contains(Path.GetExtension(path)));
    }
}
