using Spectre.Console;

namespace Serve.Cli;

/// <summary>
/// Spectre.Console over a command's writer: colours and box-drawing lines only when the writer is the console and
/// that is a terminal; redirected or captured output is plain ASCII without escape codes, one line per row.
/// </summary>
internal static class Terminal
{
    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    public static IAnsiConsole For(TextWriter output)
    {
        var terminal = IsTerminal(output);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal)
        {
            // Nothing to fit: long reasons stay on their row instead of wrapping at 80 columns.
            console.Profile.Width = 4096;
        }
        return console;
    }

    /// <summary>Rounded box-drawing lines on a terminal, plain ASCII elsewhere (logs, files, pipes).</summary>
    public static TableBorder Border(TextWriter output) => IsTerminal(output) ? TableBorder.Rounded : TableBorder.Ascii;

    public static Style StatusStyle(string status) => status switch
    {
        "HEALTHY" or "RUNNING" => new Style(Color.Green),
        "UPDATING" or "STARTING" or "STOPPING" or "DELETING" => new Style(Color.Yellow),
        "UNHEALTHY" => new Style(Color.Red),
        _ => Style.Plain,
    };

    public static Text Status(string status) => new(status, StatusStyle(status));
}
