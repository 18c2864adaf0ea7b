using System.CommandLine;
using System.Runtime.InteropServices;
using Serve.Cli;

var target = new Argument<string>("target")
{
    Description = "A config file (.yaml, .yml or .json) or an application builder: path/to/Assembly.dll:Namespace.Type.Method",
};
var adminHost = new Option<string>("--admin-host")
{
    Description = "The admin API's listen address (a non-loopback address needs --admin-token)",
    DefaultValueFactory = _ => "127.0.0.1",
};
var adminPort = new Option<int>("--admin-port")
{
    Description = "The admin API's port (0 picks a free one)",
    DefaultValueFactory = _ => 8265,
};
var adminToken = new Option<string?>("--admin-token")
{
    Description = "Require 'Authorization: Bearer <token>' on every admin request",
};
var httpPort = new Option<int?>("--http-port")
{
    Description = "The HTTP ingress port, overriding the config's http.port (0 picks a free one)",
};
var cluster = new Option<string?>("--cluster")
{
    Description = "Run as one node of a cluster whose nodes meet in this Redis (redis://host:port); overrides the config's cluster.store",
};
var run = new Command("run", "Start a Serve host in the foreground, deploy the config's applications and serve until Ctrl-C or `serve shutdown`.")
{
    target, adminHost, adminPort, adminToken, httpPort, cluster,
};
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
    var host = parse.GetValue(adminHost)!;
    var port = parse.GetValue(adminPort);
    var token = parse.GetValue(adminToken);
    var http = parse.GetValue(httpPort);
    return await RunCommand.ExecuteAsync(parse.GetValue(target)!, parse.GetValue(cluster), Console.Out, Console.Error, stop.Token, o =>
    {
        if (http is { } p)
            o.Http.Port = p;
        o.Admin.Host = host;
        o.Admin.Port = port;
        o.Admin.AccessToken = token;
    }, started: null);
});

Option<string> AddressOption() => new("--address")
{
    Description = "The host's admin API address",
    DefaultValueFactory = _ => AdminCommands.DefaultAddress,
};
Option<string?> TokenOption() => new("--token")
{
    Description = "The host's admin access token (sent as 'Authorization: Bearer <token>')",
};

var config = new Argument<string>("config") { Description = "A config file (.yaml, .yml or .json)" };
var deployAddress = AddressOption();
var deployToken = TokenOption();
var deploy = new Command("deploy", "Apply a config to a running host: deploy every listed application and remove the ones not listed.") { config, deployAddress, deployToken };
deploy.SetAction((parse, ct) => AdminCommands.DeployAsync(parse.GetValue(config)!, parse.GetValue(deployAddress), parse.GetValue(deployToken), Console.Out, Console.Error, ct));

var statusAddress = AddressOption();
var statusToken = TokenOption();
var statusJson = new Option<bool>("--json")
{
    Description = "Print the admin API's JSON status document instead of the table",
};
var status = new Command("status", "Print the applications, deployments, replica states and reasons of a running host.") { statusAddress, statusToken, statusJson };
status.SetAction((parse, ct) => parse.GetValue(statusJson)
    ? AdminCommands.StatusJsonAsync(parse.GetValue(statusAddress), parse.GetValue(statusToken), Console.Out, Console.Error, ct)
    : AdminCommands.StatusAsync(parse.GetValue(statusAddress), parse.GetValue(statusToken), Console.Out, Console.Error, ct));

var shutdownAddress = AddressOption();
var shutdownToken = TokenOption();
var shutdown = new Command("shutdown", "Shut a running host down gracefully.") { shutdownAddress, shutdownToken };
shutdown.SetAction((parse, ct) => AdminCommands.ShutdownAsync(parse.GetValue(shutdownAddress), parse.GetValue(shutdownToken), Console.Out, Console.Error, ct));

var root = new RootCommand("serve: model serving for .NET") { run, deploy, status, shutdown };
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
