namespace Audit.Api.Features.Shared;

public enum QueryStatus { Ok, NotFound, BadInput }

/// <summary>A query's answer, or why there is none (exit 1 / 404, exit 2 / 400).</summary>
public sealed record QueryResult<T>(QueryStatus Status, T? Value, string? Error)
{
    public static QueryResult<T> Ok(T value) => new(QueryStatus.Ok, value, null);

    public static QueryResult<T> NotFound(string error) => new(QueryStatus.NotFound, default, error);

    public static QueryResult<T> Bad(string error) => new(QueryStatus.BadInput, default, error);
}
