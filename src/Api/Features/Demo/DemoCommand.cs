using System.CommandLine;
using Audit.Api.Cli;
using Audit.Api.Features.Ingest;
using Audit.Api.Features.State;
using Audit.Api.Features.Why;
using Audit.Domain.Model;
using MediatR;
using Npgsql;

namespace Audit.Api.Features.Demo;

/// <summary>`audit demo`: the main job on the embedded default database with the bundled samples.</summary>
public static class DemoCommand
{
    /// <summary>Bundled sample, its run id, and the page that tells its story.</summary>
    public static readonly (string Resource, string Run, string Gpa, string Story)[] Samples =
    [
        ("samples/gh200-gpu-passthrough.ndjson", "gh", "0x40000200000", "Grace-Hopper coherent GPU memory (cacheable VM_PFNMAP outside the linear map)"),
        ("samples/gh200-gpu-passthrough.ndjson", "gh", "0x10000040", "the vfio-pci BAR, as it was before its munmap (--at 20)"),
        ("samples/x86-snp.ndjson", "snp", "0x200000", "an SEV-SNP guest's shared write to a private page (--at 13)"),
        ("samples/x86-snp.ndjson", "snp", "0x1000", "the same guest's private code page, from guest_memfd"),
    ];

    public static Command Build(CommandLine cli)
    {
        var serve = new Option<bool>("--serve") { Description = "then start the HTTP API and web UI" };
        var urls = new Option<string>("--urls") { Description = "where --serve listens", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var cmd = new Command("demo", """
            import the bundled sample runs (GH200 GPU passthrough on arm64 6.17, SEV-SNP on x86 6.16), show each
            run's stage-2 state and why its most telling page is mapped as it is, and the commands to go further.
            """)
        {
            serve, urls,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, sp) =>
        {
            if (await ImportSamplesAsync(mediator, cli.Out, ct) is { } error)
            {
                await cli.Err.WriteLineAsync(error);
                return ExitCodes.BadInput;
            }

            foreach (var run in Samples.Select(s => s.Run).Distinct())
            {
                await Summary(cli, mediator, run, ct);
            }

            var replay = (await mediator.Send(new Replay.ReplayRun("pvm", "x86-shadow"), ct)).Value!;
            await cli.Out.WriteLineAsync();
            await cli.Out.WriteLineAsync($"== pvm (real capture): {replay.Summary.Faults} faults decided; the kernel's SPTEs are compared with every decision, divergences listed with their reason:");
            await cli.Out.WriteLineAsync("   ./audit state pvm;  ./audit why pvm 0x10000;  ./audit export pvm --format perfetto -o pvm.json");

            foreach (var (_, run, gpa, story) in Samples)
            {
                var at = gpa switch { "0x10000040" => "20", "0x200000" => "13", _ => null };
                var why = (await mediator.Send(new GetWhy(run, gpa, at), ct)).Value!;
                await cli.Out.WriteLineAsync();
                await cli.Out.WriteLineAsync($"== why {run} {gpa}{(at is null ? "" : " --at " + at)}: {story}");
                await cli.Out.WriteLineAsync(why.Mapping is { } m
                    ? $"   {m.MemType}{(m.Ipat == true ? "+IPAT" : "")} {Fmt.Size(m.Size)} {m.Perms}, decided at seq {m.DecidedAt} under {m.Policy}, because:"
                    : $"   not mapped ({why.Outcome}), because:");
                foreach (var step in why.Explanation)
                {
                    await cli.Out.WriteLineAsync($"   - {step.Text}  [{step.Rule}]");
                }
            }

            await cli.Out.WriteLineAsync();
            await cli.Out.WriteLineAsync("go further:");
            await cli.Out.WriteLineAsync("  ./audit why gh 0x40000200000 --json      the same answer as the HTTP API gives");
            await cli.Out.WriteLineAsync("  ./audit replay gh --policy arm64/5.14    what would 5.14 have done? (Device for the GPU and the BAR)");
            await cli.Out.WriteLineAsync("  ./audit history gh 0x10000040            every event that changed the BAR page");
            await cli.Out.WriteLineAsync("  ./audit state gh --at 19                 the stage-2 table before dirty logging");
            await cli.Out.WriteLineAsync("  ./audit export gh --format perfetto -o gh.json   then open it in ui.perfetto.dev");
            if (!parse.GetValue(serve))
            {
                await cli.Out.WriteLineAsync("  ./audit demo --serve                     the same, then the web UI and HTTP API");
                return ExitCodes.Ok;
            }

            var app = Http.HttpApp.Build([], sp.GetRequiredService<NpgsqlDataSource>(), parse.GetValue(urls));
            await cli.Out.WriteLineAsync();
            await cli.Out.WriteLineAsync($"web UI and HTTP API on {parse.GetValue(urls)} (Ctrl-C stops)");
            await app.RunAsync(ct);
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }

    /// <summary>Imports the bundled runs (gh, snp, and the real pvm capture), reporting each; the error line if one fails. Idempotent.</summary>
    public static async Task<string?> ImportSamplesAsync(IMediator mediator, TextWriter output, CancellationToken ct)
    {
        var dir = Path.Combine(Path.GetTempPath(), "audit-samples-" + Environment.UserName);
        Directory.CreateDirectory(dir);
        foreach (var (resource, run) in Samples.Select(s => (s.Resource, s.Run)).Distinct())
        {
            var file = Extract(resource, dir);
            var result = await mediator.Send(new IngestFiles([file], run), ct);
            if (result.Error is { } e)
            {
                return e.ToString();
            }

            var r = result.Runs[0];
            await output.WriteLineAsync(r.Duplicate
                ? $"{run}: {Path.GetFileName(file)} already imported (seq {r.FirstSeq}..{r.LastSeq})"
                : $"{run}: imported {r.Inputs} events from {Path.GetFileName(file)}, decided under {r.Policy} ({r.Stored - r.Inputs} derived)");
        }

        // The real capture: strace and tracefs of one kvm_pvm VM (shadow paging), merged on one clock; the
        // bpftrace log fills in the ioctls strace cannot decode, the smaps snapshot the VMA flags.
        string[] capture = ["strace.txt", "bpftrace_ioctls.txt", "trace.txt", "smaps_phase1.txt"];
        var real = await mediator.Send(new IngestFiles(capture.Select(f => Extract("samples/real/" + f, dir)).ToList(), "pvm", "auto", "x86-shadow"), ct);
        if (real.Error is { } re)
        {
            return re.ToString();
        }

        var pvm = real.Runs[0];
        await output.WriteLineAsync(pvm.Duplicate
            ? "pvm: the real kvm_pvm capture was already imported"
            : $"pvm: imported the real kvm_pvm capture (strace + bpftrace + tracefs + smaps, {pvm.Accounts.Sum(a => a.Lines):N0} lines, all accounted for) as {pvm.Inputs} events under x86-shadow");
        return null;
    }

    private static async Task Summary(CommandLine cli, IMediator mediator, string run, CancellationToken ct)
    {
        var s = (await mediator.Send(new GetState(run, null, null), ct)).Value!;
        await cli.Out.WriteLineAsync();
        await cli.Out.WriteLineAsync($"== {run} at its end (seq {s.At}): {s.Memslots.Count} memslots, {s.Stage2.Count} stage-2 entries");
        foreach (var e in s.Stage2)
        {
            var slot = s.Memslots.FirstOrDefault(m => Domain.Addresses.Hex.TryParse(m.Gpa, out var g) && Domain.Addresses.Hex.TryParse(e.Gpa, out var x) && x >= g && x < g + m.Size);
            await cli.Out.WriteLineAsync($"   {e.Gpa,-16} {e.MemType + (e.Ipat == true ? "+IPAT" : ""),-9} {Fmt.Size(e.Granule),-4} {e.Perms}  {(slot is null ? "" : $"memslot {slot.Slot}")}");
        }
    }

    private static string Extract(string resource, string dir)
    {
        var path = Path.Combine(dir, Path.GetFileName(resource));
        using var s = typeof(DemoCommand).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"sample {resource} is missing from this build");
        using var f = File.Create(path);
        s.CopyTo(f);
        return path;
    }
}
