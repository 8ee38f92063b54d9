using System.Net;

namespace Audit.Api.Http.Security;

/// <summary>
/// Which of serve's --urls other machines could reach. Only loopback (127.0.0.0/8, ::1, localhost)
/// and unix sockets are local; a wildcard (0.0.0.0, ::, *, +), a LAN address or any host name counts
/// as the network, since a name may resolve to anything.
/// </summary>
public static class ListenAddresses
{
    /// <summary>The URLs of <paramref name="urls"/> (';'-separated, as Kestrel takes them) that listen beyond this machine.</summary>
    public static IReadOnlyList<string> OnNetwork(string urls) =>
        Split(urls).Where(u => !IsLocal(Host(u))).ToList();

    public static IReadOnlyList<string> Split(string urls) =>
        urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The host part of a Kestrel URL; "*" and "+" are not valid URIs, so this does not use Uri.</summary>
    public static string Host(string url)
    {
        var rest = url.Contains("://", StringComparison.Ordinal) ? url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..] : url;
        if (rest.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            return "unix:";
        }

        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var authority = slash < 0 ? rest : rest[..slash];
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']', StringComparison.Ordinal);
            return close < 0 ? authority : authority[1..close];
        }

        var colon = authority.LastIndexOf(':');
        return colon < 0 ? authority : authority[..colon];
    }

    public static bool IsLocal(string host) =>
        host == "unix:"
        || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
}
