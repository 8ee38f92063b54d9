using Audit.Tests.Infrastructure;

namespace Audit.Tests.Architecture;

/// <summary>Database test classes share one schema per class; a class still on the per-test constructor is named here.</summary>
public sealed class SchemaPerClassTests
{
    [Fact]
    public void Every_database_test_class_takes_the_class_schema_fixture()
    {
        var perTest = typeof(DatabaseTest).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false } && t.IsSubclassOf(typeof(DatabaseTest)))
            .Where(t => !t.GetConstructors().Any(c => c.GetParameters().Any(p => p.ParameterType == typeof(SchemaFixture))))
            .Select(t => t.Name)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.True(perTest.Count == 0,
            "still one schema per test (declare them as X(SchemaFixture schema) : DatabaseTest(schema), each test with run ids of its own): " + string.Join(", ", perTest));
    }
}
