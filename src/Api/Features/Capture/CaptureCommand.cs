using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Audit.Api.Cli;
using Audit.Api.Features.Ingest;

namespace Audit.Api.Features.Capture;

/// <summary>
/// `audit capture -- VMM ARGS...`: records a VM run on this KVM host and ingests it. The VMM runs under
/// strace (its VMA syscalls and memslot ioctls) while tracefs records the kvm and kvmmmu events on the mono
/// clock for it and its children; the tracing state is restored afterwards whatever happens.
/// </summary>
public static class CaptureCommand
{
    public const string StraceSyscalls = "ioctl,mmap,munmap,mprotect,madvise,memfd_create,fallocate,close";

    public static Command Build(CommandLine cli)
    {
        var vmm = new Argument<string[]>("VMM") { Arity = ArgumentArity.OneOrMore, Description = "the VMM and its arguments, after --" };
        var run = new Option<string?>("--run") { Description = "run id (default: capture-YYYYMMDD-HHMMSS)" };
        var outDir = new Option<string?>("--out") { Description = "folder for strace.txt and trace.txt (default: ./RUN)" };
        var policy = new Option<string?>("--policy") { Description = "decide under this policy (default: from this host's KVM module: x86-shadow, x86-vmx/6.16, x86-svm, arm64/6.18)" };
        var cmd = new Command("capture", $"""
            run a VMM on this host and store what KVM did as a run (Linux, root, /dev/kvm, tracefs, strace).
            The VMM runs under `strace -f -ttt -e trace={StraceSyscalls}`; tracefs records kvm:*, kvmmmu:*
            and sys_exit_mmap (to align the two clocks) for its processes, on the mono clock. Tracing is put
            back as it was afterwards, also when the VMM fails or you press Ctrl-C. The files stay in --out.
            Example: audit capture --run vm1 -- ./probe_vmm
            """)
        {
            vmm, run, outDir, policy,
        };
        cmd.SetAction((parse, ct) => cli.WithMediator(parse, async (mediator, _) =>
        {
            var id = parse.GetValue(run) ?? "capture-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
            if (Problem() is { } problem)
            {
                await cli.Err.WriteLineAsync("audit capture: " + problem);
                return ExitCodes.BadInput;
            }

            var dir = Path.GetFullPath(parse.GetValue(outDir) ?? id);
            Directory.CreateDirectory(dir);
            var (strace, trace) = (Path.Combine(dir, "strace.txt"), Path.Combine(dir, "trace.txt"));
            var argv = parse.GetValue(vmm)!;

            var tracefs = Tracefs.Open();
            tracefs.Save();
            int exit;
            try
            {
                tracefs.Configure();
                // A shell that waits for a line, then becomes strace: its pid is traced (with every child)
                // before the VMM exists, so no early event is missed.
                var psi = new ProcessStartInfo("sh") { UseShellExecute = false, RedirectStandardInput = true };
                foreach (var a in (string[])["-c", "read _ && exec \"$0\" \"$@\"", "strace", "-f", "-ttt", "-e", "trace=" + StraceSyscalls, "-o", strace, "--", .. argv])
                {
                    psi.ArgumentList.Add(a);
                }

                using var p = Process.Start(psi) ?? throw new IOException("cannot start strace");
                tracefs.Start(p.Id);
                await p.StandardInput.WriteLineAsync("go");
                p.StandardInput.Close();
                await cli.Err.WriteLineAsync($"capture: {string.Join(' ', argv)} (strace pid {p.Id}), tracing {string.Join(", ", Tracefs.Events)}");
                try
                {
                    await p.WaitForExitAsync(ct);
                }
                catch (OperationCanceledException)
                {
                    p.Kill(entireProcessTree: true);
                    await p.WaitForExitAsync(CancellationToken.None);
                    throw;
                }

                exit = p.ExitCode;
                tracefs.Stop();
                tracefs.CopyTrace(trace);
            }
            finally
            {
                var failed = tracefs.Restore();
                await cli.Err.WriteLineAsync(failed.Count == 0 ? $"capture: tracing restored ({tracefs.Describe()})" : "capture: could not restore " + string.Join("; ", failed));
            }

            await cli.Err.WriteLineAsync($"capture: the VMM exited with {exit}; files in {dir}");
            var chosen = parse.GetValue(policy) ?? HostPolicy();
            var result = await mediator.Send(new IngestFiles([strace, trace], id, "auto", chosen), ct);
            if (result.Error is { } error)
            {
                await cli.Err.WriteLineAsync(error.ToString());
                return ExitCodes.BadInput;
            }

            await IngestCommand.ReportAsync(cli, result);
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }

    /// <summary>Why a capture cannot run here, or null.</summary>
    public static string? Problem()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux (KVM and tracefs)";
        }

        if (geteuid() != 0)
        {
            return "needs root (tracefs and /dev/kvm)";
        }

        if (!File.Exists("/dev/kvm"))
        {
            return "/dev/kvm is missing: KVM is not available on this host";
        }

        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':');
        return path.Any(d => File.Exists(Path.Combine(d, "strace"))) ? null : "strace is not installed (apt-get install strace)";
    }

    /// <summary>The policy matching this host's KVM: kvm_pvm shadow paging, kvm_intel with EPT, kvm_amd with NPT, or arm64.</summary>
    public static string HostPolicy()
    {
        static bool On(string p) => File.Exists(p) && File.ReadAllText(p).Trim() is "Y" or "1";
        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            return "x86-shadow";
        }

        if (Directory.Exists("/sys/module/kvm_intel"))
        {
            return On("/sys/module/kvm_intel/parameters/ept") ? "x86-vmx/6.16" : "x86-shadow";
        }

        if (Directory.Exists("/sys/module/kvm_amd"))
        {
            return On("/sys/module/kvm_amd/parameters/npt") ? "x86-svm" : "x86-shadow";
        }

        return System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "arm64/6.18" : "x86-shadow";
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();
}
