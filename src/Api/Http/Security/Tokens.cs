using System.Security.Cryptography;
using System.Text;

namespace Audit.Api.Http.Security;

/// <summary>The bearer token check.</summary>
public static class Tokens
{
    /// <summary>
    /// Compares in constant time. Both sides are hashed first: FixedTimeEquals returns at once on a
    /// length mismatch, which would tell an attacker the token's length.
    /// </summary>
    public static bool Matches(string? presented, string token) =>
        presented is not null
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>The token of an `Authorization: Bearer TOKEN` header, or null.</summary>
    public static string? Presented(HttpRequest req)
    {
        var header = req.Headers.Authorization.FirstOrDefault();
        return header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
    }
}
