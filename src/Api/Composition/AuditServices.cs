using Audit.Projections.Storage;
using MediatR;
using Npgsql;

namespace Audit.Api.Composition;

/// <summary>The composition root shared by the command line and the HTTP host: one set of handlers, registered by hand.</summary>
public static class AuditServices
{
    public static IServiceCollection AddAudit(this IServiceCollection services, NpgsqlDataSource dataSource)
    {
        services.AddSingleton(dataSource);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new Projections.Temporal.ProjectionStore(sp.GetRequiredService<NpgsqlDataSource>(), Projections.Temporal.Partitions.SpareLeaves));
        services.AddSingleton(sp => new Projections.Temporal.TemporalQueries(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddSingleton(sp => new Projections.Timeline.EventDensity(sp.GetRequiredService<NpgsqlDataSource>()));
        services.AddSingleton<Features.Timeline.TimelineCache>();
        services.AddSingleton(sp => new EventStore(
            sp.GetRequiredService<NpgsqlDataSource>(), sp.GetRequiredService<TimeProvider>(), [sp.GetRequiredService<Projections.Temporal.ProjectionStore>()]));
        services.AddSingleton(sp => new Projections.Temporal.Rebuilder(sp.GetRequiredService<EventStore>()));

        // MediatR 5.1.0: the only version the registry serves whole; handlers are listed here, not scanned.
        services.AddSingleton<Features.Ingest.RunWriter>();
        services.AddSingleton<ServiceFactory>(sp => sp.GetService!);
        services.AddSingleton<IMediator, Mediator>();
        services.AddTransient<IRequestHandler<Features.Ingest.IngestFiles, Features.Ingest.IngestResult>, Features.Ingest.IngestFilesHandler>();
        services.AddTransient<IRequestHandler<Features.Ingest.AppendEvents, Features.Ingest.AppendOutcome>, Features.Ingest.AppendEventsHandler>();
        services.AddTransient<IRequestHandler<Features.Runs.ListRuns, IReadOnlyList<Features.Runs.RunView>>, Features.Runs.ListRunsHandler>();
        services.AddTransient<IRequestHandler<Features.Why.GetWhy, Features.Shared.QueryResult<Features.Why.WhyView>>, Features.Why.GetWhyHandler>();
        services.AddTransient<IRequestHandler<Features.State.GetState, Features.Shared.QueryResult<Features.State.StateView>>, Features.State.GetStateHandler>();
        services.AddTransient<IRequestHandler<Features.History.GetHistory, Features.Shared.QueryResult<Features.History.HistoryView>>, Features.History.GetHistoryHandler>();
        services.AddTransient<IRequestHandler<Features.Rebuild.RebuildProjections, Features.Shared.QueryResult<Features.Rebuild.RebuildView>>, Features.Rebuild.RebuildProjectionsHandler>();
        services.AddTransient<IRequestHandler<Features.Replay.ReplayRun, Features.Shared.QueryResult<Features.Replay.ReplayView>>, Features.Replay.ReplayRunHandler>();
        services.AddTransient<IRequestHandler<Features.Diff.DiffRuns, Features.Shared.QueryResult<Features.Diff.DiffView>>, Features.Diff.DiffRunsHandler>();
        services.AddTransient<IRequestHandler<Features.Export.ExportRun, Features.Shared.QueryResult<Features.Export.ExportedRun>>, Features.Export.ExportRunHandler>();
        services.AddTransient<IRequestHandler<Features.Timeline.GetTimeline, Features.Shared.QueryResult<Features.Timeline.TimelineView>>, Features.Timeline.GetTimelineHandler>();
        services.AddTransient<IRequestHandler<Features.Timeline.FindEvent, Features.Shared.QueryResult<Features.Timeline.FoundEvent>>, Features.Timeline.FindEventHandler>();
        services.AddTransient<IRequestHandler<Features.Timeline.FindRule, Features.Shared.QueryResult<Features.Timeline.FoundEvent>>, Features.Timeline.FindRuleHandler>();
        services.AddTransient<IRequestHandler<Features.Replay.ListPolicies, IReadOnlyList<Features.Replay.PolicyView>>, Features.Replay.ListPoliciesHandler>();
        services.AddTransient<IRequestHandler<Features.Map.GetMap, Features.Shared.QueryResult<Features.Map.MapView>>, Features.Map.GetMapHandler>();
        services.AddTransient<IRequestHandler<Features.Lint.GetLint, Features.Shared.QueryResult<Features.Lint.LintReport>>, Features.Lint.GetLintHandler>();
        services.AddTransient<IRequestHandler<Features.Bisect.BisectRun, Features.Shared.QueryResult<Features.Bisect.BisectView>>, Features.Bisect.BisectRunHandler>();
        services.AddTransient<IRequestHandler<Features.DbCheck.CheckDatabase, Features.Shared.QueryResult<Features.DbCheck.CheckView>>, Features.DbCheck.CheckDatabaseHandler>();
        return services;
    }
}
