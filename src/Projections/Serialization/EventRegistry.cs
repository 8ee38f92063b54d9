using System.Text.Json;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>
/// One registered event type: the name clients write in a trace ("MemslotSet"), the stable
/// stored name ("memslot_set") and schema version, and its pure read and write functions.
/// CLR type names are never stored.
/// </summary>
public sealed class EventType
{
    internal EventType(Type clr, string traceName, string storedName, int version, bool derived, Func<Fields, RunEvent> read, Action<Utf8JsonWriter, RunEvent, StepTable?> write)
    {
        Clr = clr;
        TraceName = traceName;
        StoredName = storedName;
        Version = version;
        Derived = derived;
        Read = read;
        Write = write;
    }

    public Type Clr { get; }
    public string TraceName { get; }
    public string StoredName { get; }
    public int Version { get; }

    /// <summary>Written by the engine only; a trace that contains one is bad input.</summary>
    public bool Derived { get; }

    internal Func<Fields, RunEvent> Read { get; }
    /// <summary>Writes the payload's fields; a decision's explanation interns its steps into the table when one is given.</summary>
    internal Action<Utf8JsonWriter, RunEvent, StepTable?> Write { get; }
}

/// <summary>The single registry of event names and versions.</summary>
public static class EventRegistry
{
    private static readonly Dictionary<Type, EventType> ByClr = [];
    private static readonly Dictionary<string, EventType> ByTraceName = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, EventType> ByStoredName = new(StringComparer.Ordinal);

    static EventRegistry()
    {
        foreach (var t in EventCodec.All())
        {
            ByClr.Add(t.Clr, t);
            ByTraceName.Add(t.TraceName, t);
            ByStoredName.Add(t.StoredName, t);
        }
    }

    public static IReadOnlyCollection<EventType> Types => ByClr.Values;

    public static EventType For(RunEvent e) => ByClr[e.GetType()];

    public static EventType? FindTraceName(string name) => ByTraceName.GetValueOrDefault(name);

    public static EventType? FindStoredName(string name) => ByStoredName.GetValueOrDefault(name);

    /// <summary>snake_case of a PascalCase trace name: "GuestMemfdCreated" -> "guest_memfd_created".</summary>
    internal static string SnakeCase(string pascal)
    {
        var sb = new System.Text.StringBuilder(pascal.Length + 8);
        for (var i = 0; i < pascal.Length; i++)
        {
            var c = pascal[i];
            if (char.IsUpper(c))
            {
                if (i > 0)
                {
                    sb.Append('_');
                }

                sb.Append(char.ToLowerInvariant(c));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }
}
