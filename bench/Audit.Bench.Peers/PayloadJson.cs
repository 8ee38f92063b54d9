using System.Text.Json;
using System.Text.Json.Serialization;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Bench.Peers;

/// <summary>
/// Lets Marten store our events as the very payloads our store writes: its System.Text.Json serializer
/// calls our production serializer for every registered event type, so both stores pay the same
/// serialization and the byte figures compare storage, not two JSON shapes.
/// </summary>
internal sealed class PayloadJson : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => EventRegistry.Types.Any(t => t.Clr == typeToConvert);

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(Payload<>).MakeGenericType(typeToConvert))!;

    private sealed class Payload<T> : JsonConverter<T>
        where T : RunEvent
    {
        private static readonly EventType Registered = EventRegistry.Types.Single(t => t.Clr == typeof(T));

        // Marten hands a reader positioned in its buffer and our serializer takes bytes: one extra parse
        // per event on Marten's read, stated beside the figure in docs/benchmarks.md.
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            return (T)EventSerializer.Deserialize(Registered.StoredName, Registered.Version, JsonSerializer.SerializeToUtf8Bytes(doc.RootElement));
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) =>
            writer.WriteRawValue(EventSerializer.SerializePayload(value), skipInputValidation: true);
    }
}
