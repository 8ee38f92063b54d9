return await Audit.Api.Cli.CommandLine.RunAsync(args, Console.Out, Console.Error);
