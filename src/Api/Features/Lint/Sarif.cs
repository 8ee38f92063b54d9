using System.Globalization;
using System.Text.Json.Nodes;

namespace Audit.Api.Features.Lint;

/// <summary>
/// A lint report as SARIF 2.1.0, for code-scanning tools. A run is not a source file, so each
/// result's location names it twice: a physicalLocation whose artifact is the URI `run:RUN` and
/// whose region.startLine is the first cited seq (tools that only draw files still show "line" =
/// seq), and one logicalLocation per cited seq (`RUN#SEQ`, kind "object"). All seqs are also in
/// properties.seqs. docs/rules.md ("Lint rules") documents this.
/// </summary>
public static class Sarif
{
    public const string Version = "2.1.0";
    public const string Schema = "https://json.schemastore.org/sarif-2.1.0.json";
    public const string ToolName = "memory-attribute-audit";

    /// <summary>An absolute URI (SARIF requires one) naming the catalogue; the project has no web home.</summary>
    public const string InformationUri = "urn:memory-attribute-audit:docs/rules.md#lint-rules";

    public static JsonObject From(LintReport report)
    {
        var catalogue = Linter.Catalogue;
        var index = catalogue.Select((r, i) => (r.Id, i)).ToDictionary(x => x.Id, x => x.i);
        return new JsonObject
        {
            ["version"] = Version,
            ["$schema"] = Schema,
            ["runs"] = new JsonArray(new JsonObject
            {
                ["tool"] = new JsonObject
                {
                    ["driver"] = new JsonObject
                    {
                        ["name"] = ToolName,
                        ["version"] = typeof(Sarif).Assembly.GetName().Version?.ToString() ?? "0.0.0",
                        ["informationUri"] = InformationUri,
                        ["rules"] = new JsonArray(catalogue.Select(Rule).ToArray<JsonNode?>()),
                    },
                },
                ["automationDetails"] = new JsonObject { ["id"] = $"audit-lint/{report.Run}" },
                ["properties"] = new JsonObject { ["run"] = report.Run, ["policy"] = report.Policy },
                ["results"] = new JsonArray(report.Findings.Select(f => Result(report.Run, f, index[f.RuleId])).ToArray<JsonNode?>()),
            }),
        };
    }

    public static string Level(Severity s) => s switch
    {
        Severity.Error => "error",
        Severity.Warning => "warning",
        _ => "note",
    };

    private static JsonObject Rule(LintRuleInfo r) => new()
    {
        ["id"] = r.Id,
        ["name"] = r.Id,
        ["shortDescription"] = new JsonObject { ["text"] = r.Title },
        ["fullDescription"] = new JsonObject { ["text"] = r.Description },
        ["help"] = new JsonObject { ["text"] = r.Help },
        ["defaultConfiguration"] = new JsonObject { ["level"] = Level(r.Severity) },
    };

    private static JsonObject Result(string run, Finding f, int ruleIndex)
    {
        var location = new JsonObject
        {
            ["physicalLocation"] = new JsonObject
            {
                ["artifactLocation"] = new JsonObject { ["uri"] = "run:" + Uri.EscapeDataString(run) },
                ["region"] = new JsonObject { ["startLine"] = f.Seqs.Count > 0 ? f.Seqs[0] : 1 },
            },
            ["logicalLocations"] = new JsonArray(f.Seqs.Select(s => (JsonNode?)new JsonObject
            {
                ["name"] = "seq " + s.ToString(CultureInfo.InvariantCulture),
                ["fullyQualifiedName"] = $"{run}#{s.ToString(CultureInfo.InvariantCulture)}",
                ["kind"] = "object",
            }).ToArray()),
        };
        return new JsonObject
        {
            ["ruleId"] = f.RuleId,
            ["ruleIndex"] = ruleIndex,
            ["level"] = Level(f.Severity),
            ["message"] = new JsonObject { ["text"] = $"{f.Message}. Fix: {f.Fix}" },
            ["locations"] = new JsonArray(location),
            ["properties"] = new JsonObject { ["seqs"] = new JsonArray(f.Seqs.Select(s => (JsonNode?)s).ToArray()) },
        };
    }
}
