using System.CommandLine;
using System.Runtime.InteropServices;
using Serve.Cli;

var target = new Argument<string>("target")
{
    Description = "A config file (.yaml, .yml or .json) or an application builder: path/to/Assembly.dll:Namespace.Type.Method",
};
var run = new Command("run", "Start a Serve host in the foreground, deploy the config's applications and serve until Ctrl-C.") { target };
run.SetAction(async (parse, _) =>
{
    using var stop = new CancellationTokenSource();
    void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        stop.Cancel();
    }
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    return await RunCommand.ExecuteAsync(parse.GetValue(target)!, Console.Out, Console.Error, stop.Token);
});

var root = new RootCommand("serve: model serving for .NET") { run };
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
