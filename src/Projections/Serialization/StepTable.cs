using System.Buffers;
using System.Text;
using System.Text.Json;
using Audit.Domain;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>
/// A run's interned explanation steps. Most steps of a decision repeat across decisions (the memory-type
/// rule under one policy, the level from one memslot, the pfn kind of one VMA): the second time a step
/// is written it gets an id, is stored once in <c>explanation_steps</c>, and payloads carry the id in its
/// place. A step seen once stays inline (facts citing the fault itself are unique anyway). The table is
/// passed to <see cref="EventSerializer"/> explicitly by whoever (de)serializes a run's payloads.
/// </summary>
public sealed class StepTable(bool writer)
{
    private const int SeenOnceLimit = 200_000;

    // A writer's table is used by one append at a time (under the run's row lock); a reader's is shared
    // by concurrent reads, which only load and resolve.
    private readonly Dictionary<ExplanationStep, int> _ids = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, ExplanationStep> _steps = new();
    // Sightings of steps not yet given an id, by the hash of their value, not by the step: most are
    // seen once (they cite the fault itself), and holding them kept every such step, its facts and
    // their texts alive until the table was cleared, which the writers' GC copied from generation to
    // generation. Two steps with one hash share a count, so one may get its id a sighting early: it is
    // then stored in explanation_steps like any other, and reads the same.
    private readonly Dictionary<int, int> _seen = [];

    // The ids of step objects already looked up. The engine cites one step object in many decisions
    // (StepMemo), and finding it by value hashed its rule, text and facts at every sighting.
    private const int ReferenceLimit = 50_000;
    private readonly Dictionary<ExplanationStep, int> _idsByReference = new(ReferenceEqualityComparer.Instance);

    // Step shapes (ADR 0013) share the id numbering and the table: an id names a whole step or a shape.
    private readonly Dictionary<StepShape, int> _shapeIds = new(ShapeComparer.Instance);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, StepShape> _shapes = new();

    public int MaxId { get; private set; }

    /// <summary>Steps and shapes given an id since <see cref="TakeAdded"/> last ran, as their stored JSON, to store with the append.</summary>
    private readonly List<(int Id, string Json)> _added = [];

    public void Load(int id, ExplanationStep step) => Load(id, step, _ids, _steps);

    /// <summary>Files an entry under its id (a writer also by value) and moves <see cref="MaxId"/> past it.</summary>
    private void Load<T>(int id, T entry, Dictionary<T, int> ids, System.Collections.Concurrent.ConcurrentDictionary<int, T> byId)
        where T : notnull
    {
        if (writer)
        {
            ids.TryAdd(entry, id);
        }

        byId[id] = entry;
        lock (_steps)
        {
            MaxId = Math.Max(MaxId, id);
        }
    }

    /// <summary>The id to write instead of the step, or null to write it inline (or as its shape).</summary>
    /// <param name="sightings">The sighting at which a step gets an id: a jsonb payload interns on the second; a compact record, where
    /// a step written as its shape costs only its values, later (CompactRecord.WholeStepSightings).</param>
    public int? Intern(ExplanationStep step, int sightings = 2)
    {
        if (!writer)
        {
            throw new InvalidOperationException("a reader's step table does not intern");
        }

        if (_idsByReference.TryGetValue(step, out var id))
        {
            return id;
        }

        if (_ids.TryGetValue(step, out id))
        {
            Remember(step, id);
            return id;
        }

        var hash = step.GetHashCode();
        var seen = _seen.GetValueOrDefault(hash) + 1;
        if (seen >= sightings)
        {
            _seen.Remove(hash);
            id = ++MaxId;
            Load(id, step);
            Remember(step, id);
            _added.Add((id, ToJson(step)));
            return id;
        }

        if (_seen.Count >= SeenOnceLimit)
        {
            _seen.Clear();
        }

        _seen[hash] = seen;
        return null;
    }

    private void Remember(ExplanationStep step, int id)
    {
        if (_idsByReference.Count >= ReferenceLimit)
        {
            _idsByReference.Clear();
        }

        _idsByReference[step] = id;
    }

    public bool TryResolve(int id, out ExplanationStep step) => _steps.TryGetValue(id, out step!);

    public bool TryResolveShape(int id, out StepShape shape) => _shapes.TryGetValue(id, out shape!);

    /// <summary>
    /// The id of the shape a step has, appending the values it takes out to <paramref name="args"/>: a shape the
    /// table has is found from the step itself (<see cref="ShapeComparer"/>); only a new one is made.
    /// </summary>
    public int InternShape(ExplanationStep step, long inputSeq, List<ulong> args)
    {
        if (writer && _shapeIds.GetAlternateLookup<ShapeProbe>().TryGetValue(new ShapeProbe(step, inputSeq), out var id))
        {
            StepShape.ArgsOf(step, inputSeq, args);
            return id;
        }

        return InternShape(StepShape.Of(step, inputSeq, args));
    }

    /// <summary>The id of a step shape, given one the first time it is seen (a run has a few dozen).</summary>
    public int InternShape(StepShape shape)
    {
        if (!writer)
        {
            throw new InvalidOperationException("a reader's step table does not intern");
        }

        if (_shapeIds.TryGetValue(shape, out var id))
        {
            return id;
        }

        id = ++MaxId;
        LoadShape(id, shape);
        _added.Add((id, shape.ToJson()));
        return id;
    }

    private void LoadShape(int id, StepShape shape) => Load(id, shape, _shapeIds, _shapes);

    /// <summary>Loads a stored entry of explanation_steps: a whole step or a shape.</summary>
    public void LoadJson(int id, string json)
    {
        using var doc = JsonDocument.Parse(json);
        if (StepShape.FromJson(doc.RootElement) is { } shape)
        {
            LoadShape(id, shape);
        }
        else
        {
            Load(id, EventCodec.ReadStep(doc.RootElement));
        }
    }

    public List<(int Id, string Json)> TakeAdded()
    {
        var added = _added.ToList();
        _added.Clear();
        return added;
    }

    /// <summary>A step as its JSON object (the form in payloads and in explanation_steps).</summary>
    public static string ToJson(ExplanationStep step)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            EventCodec.WriteStep(w, step);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}

/// <summary>A payload names an interned step its run's table does not have (yet): reload the table and read again.</summary>
public sealed class StepMissingException(int id) : Exception($"explanation step {id} is not in the run's step table")
{
    public int Id { get; } = id;
}
