// This file is compiled into two assemblies: Serve (net10.0) and, linked, Serve.Generators (netstandard2.0), so the
// runtime's DeploymentOptions.Validate, the config loader and the generator's SERVE018 checks share one table of
// ranges, defaults and rule texts. Keep it to C# that builds for netstandard2.0: no newer APIs, no other Serve types,
// no usings (the generator has no implicit usings; Serve has them, and a repeated using would warn).

namespace Serve;

/// <summary>
/// The range of one numeric deployment option, with the words each place that checks it uses: <see cref="Rule"/>
/// for the runtime ("option X = v is out of range: it …"), <see cref="Fix"/> for the generator's SERVE018 ("… is
/// out of range; …") and <see cref="Expected"/> for the config loader ("expected …, got v").
/// </summary>
internal sealed class OptionRule
{
    internal OptionRule(string option, double min, bool minExclusive, double max, bool whole, double defaultValue, string rule, string fix, string expected)
    {
        Option = option;
        Min = min;
        MinExclusive = minExclusive;
        Max = max;
        Whole = whole;
        Default = defaultValue;
        Rule = rule;
        Fix = fix;
        Expected = expected;
    }

    /// <summary>The option's name: a <c>DeploymentOptions</c> property, <c>Autoscaling.X</c>, or <c>Resources</c> for every custom amount.</summary>
    public string Option { get; }

    /// <summary>The lowest value accepted (or the bound just below it when <see cref="MinExclusive"/>).</summary>
    public double Min { get; }

    /// <summary>True when <see cref="Min"/> itself is refused (the value must be above it).</summary>
    public bool MinExclusive { get; }

    /// <summary>The highest value accepted.</summary>
    public double Max { get; }

    /// <summary>True for an <c>int</c> option.</summary>
    public bool Whole { get; }

    /// <summary>The default (seconds for a time option).</summary>
    public double Default { get; }

    /// <summary>What the runtime says after "it": "must be …".</summary>
    public string Rule { get; }

    /// <summary>What the generator's SERVE018 says to do: "use …".</summary>
    public string Fix { get; }

    /// <summary>What the config loader expected: "an integer of 0 or more" (it adds ", at most N" past <see cref="Max"/>).</summary>
    public string Expected { get; }

    /// <summary>True when <paramref name="value"/> is in range (NaN never is).</summary>
    public bool Accepts(double value) => (MinExclusive ? value > Min : value >= Min) && value <= Max;
}

/// <summary>
/// The one table of deployment option rules (see <see cref="OptionRule"/>), keyed by option name: the runtime, the
/// config loader and the source generator all check against it, so their ranges and messages cannot drift apart.
/// </summary>
internal static class OptionRules
{
    /// <summary>The value of MaxQueuedRequests meaning "no limit".</summary>
    public const int Unbounded = -1;
    /// <summary>Default NumReplicas.</summary>
    public const int DefaultNumReplicas = 1;
    /// <summary>Default MaxOngoingRequests.</summary>
    public const int DefaultMaxOngoingRequests = 5;
    /// <summary>Default NumCpus: none reserved.</summary>
    public const double DefaultNumCpus = 0;
    /// <summary>Default HealthCheckPeriod in seconds.</summary>
    public const double DefaultHealthCheckPeriodSeconds = 10;
    /// <summary>Default HealthCheckTimeout in seconds.</summary>
    public const double DefaultHealthCheckTimeoutSeconds = 30;
    /// <summary>Default GracefulShutdownTimeout in seconds.</summary>
    public const double DefaultGracefulShutdownTimeoutSeconds = 20;
    /// <summary>The most replicas one deployment may run (NumReplicas and the autoscaling replica counts).</summary>
    public const int MaxNumReplicas = 10_000;
    /// <summary>The most CPUs one replica may reserve.</summary>
    public const double MaxNumCpus = 10_000;
    /// <summary>The most GPUs one replica may reserve.</summary>
    public const double MaxNumGpus = 1_000;
    /// <summary>The largest amount of one custom resource a replica may reserve: 10^12, room for a byte count.</summary>
    public const double MaxResourceAmount = 1e12;
    /// <summary>The longest wait a .NET timer takes, in milliseconds (<c>uint.MaxValue - 1</c>, about 49.7 days); longer time options are refused.</summary>
    public const double MaxTimerMilliseconds = uint.MaxValue - 1.0;
    /// <summary><see cref="MaxTimerMilliseconds"/> in seconds.</summary>
    public const double MaxTimerSeconds = MaxTimerMilliseconds / 1000.0;
    /// <summary>NumGpus above this must be a whole number: a replica never spans part of a second device.</summary>
    public const double WholeGpusAbove = 1;

    private const string MaxReplicasText = "10000";
    private const string MaxTimerText = "4294967 (49 days, the longest a .NET timer waits)";

    /// <summary>NumReplicas.</summary>
    public static readonly OptionRule NumReplicas = new("NumReplicas", 0, false, MaxNumReplicas, true, DefaultNumReplicas,
        "must be 0 or more and at most " + MaxReplicasText + "; use 1 or more replicas to serve calls",
        "use 0 or more replicas, at most " + MaxReplicasText,
        "an integer of 0 or more");

    /// <summary>MaxReplicasPerNode (0 = no cap).</summary>
    public static readonly OptionRule MaxReplicasPerNode = new("MaxReplicasPerNode", 0, false, MaxNumReplicas, true, 0,
        "must be 0 (no cap, the default) or a positive cap of at most " + MaxReplicasText,
        "use 0 (no cap, the default) or a positive cap of at most " + MaxReplicasText,
        "an integer of 0 (no cap) or more");

    /// <summary>
    /// Parses a node selector written as <c>"zone=a,gpu=h100"</c> (the attribute's form) into label pairs, or says what is
    /// wrong with it. Label names and values are trimmed; names must be non-empty and unique.
    /// </summary>
    public static bool TryParseNodeSelector(string text, out System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<string, string>> labels, out string problem)
    {
        labels = new System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<string, string>>();
        problem = "";
        foreach (var part in text.Split(','))
        {
            var pair = part.Trim();
            if (pair.Length == 0)
                continue;
            var eq = pair.IndexOf('=');
            var name = eq < 0 ? pair : pair.Substring(0, eq).Trim();
            if (eq < 0 || name.Length == 0)
            {
                problem = "write it as label=value pairs separated by commas, e.g. \"zone=a,gpu=h100\" ('" + pair + "' is not label=value)";
                return false;
            }
            foreach (var seen in labels)
            {
                if (seen.Key == name)
                {
                    problem = "names label '" + name + "' twice; give each label once";
                    return false;
                }
            }
            labels.Add(new System.Collections.Generic.KeyValuePair<string, string>(name, pair.Substring(eq + 1).Trim()));
        }
        return true;
    }

    /// <summary>MaxOngoingRequests.</summary>
    public static readonly OptionRule MaxOngoingRequests = new("MaxOngoingRequests", 1, false, int.MaxValue, true, DefaultMaxOngoingRequests,
        "must be at least 1 (the default is 5)",
        "use 1 or more concurrent calls per replica (the default is 5)",
        "an integer of 1 or more");

    /// <summary>MaxQueuedRequests.</summary>
    public static readonly OptionRule MaxQueuedRequests = new("MaxQueuedRequests", Unbounded, false, int.MaxValue, true, Unbounded,
        "must be -1 (unbounded), 0 (never queue) or a positive limit",
        "use -1 (unbounded), 0 (never queue) or a positive limit",
        "an integer of -1 (unbounded) or more");

    /// <summary>NumCpus.</summary>
    public static readonly OptionRule NumCpus = new("NumCpus", 0, false, MaxNumCpus, false, DefaultNumCpus,
        "must be a finite number of 0 or more and at most 10000 (the default, 0, reserves no CPU and sets no thread limit)",
        "use a finite number of 0 or more CPUs, at most 10000 (the default, 0, reserves none)",
        "a number of 0 or more");

    /// <summary>NumGpus (see also <see cref="WholeGpusAbove"/>).</summary>
    public static readonly OptionRule NumGpus = new("NumGpus", 0, false, MaxNumGpus, false, 0,
        "must be a finite number of 0 or more and at most 1000, e.g. 0.5 to share a GPU between two replicas",
        "use a finite number of 0 or more GPUs, at most 1000, e.g. 0.5 to share a GPU between two replicas",
        "a number of 0 or more");

    /// <summary>The runtime's rule for a NumGpus above <see cref="WholeGpusAbove"/> that is not whole.</summary>
    public const string WholeGpusRule = "above 1 must be a whole number of GPUs; a replica never spans part of a second device";

    /// <summary>The generator's fix for a NumGpus above <see cref="WholeGpusAbove"/> that is not whole, given the next whole number.</summary>
    public static string WholeGpusFix(string next) => "above 1 use a whole number of GPUs, e.g. " + next + "; a replica never spans part of a second device";

    /// <summary>True when <paramref name="gpus"/> (already in range) is a fraction of one device or a whole number of devices.</summary>
    public static bool IsWholeEnough(double gpus) => !(gpus > WholeGpusAbove && gpus != System.Math.Floor(gpus));

    /// <summary>The amount of each custom resource (Resources["name"]).</summary>
    public static readonly OptionRule ResourceAmount = new("Resources", 0, false, MaxResourceAmount, false, 0,
        "must be a finite amount of 0 or more and at most 1e12",
        "use a finite amount of 0 or more, at most 1e12",
        "a number of 0 or more");

    /// <summary>HealthCheckPeriod (seconds).</summary>
    public static readonly OptionRule HealthCheckPeriod = new("HealthCheckPeriod", 0, true, MaxTimerSeconds, false, DefaultHealthCheckPeriodSeconds,
        "must be positive and at most 49 days (the default is 10 s)",
        "use a number of seconds above 0, at most " + MaxTimerText + "; the default is 10",
        "a number of seconds above 0");

    /// <summary>HealthCheckTimeout (seconds).</summary>
    public static readonly OptionRule HealthCheckTimeout = new("HealthCheckTimeout", 0, true, MaxTimerSeconds, false, DefaultHealthCheckTimeoutSeconds,
        "must be positive and at most 49 days (the default is 30 s)",
        "use a number of seconds above 0, at most " + MaxTimerText + "; the default is 30",
        "a number of seconds above 0");

    /// <summary>GracefulShutdownTimeout (seconds).</summary>
    public static readonly OptionRule GracefulShutdownTimeout = new("GracefulShutdownTimeout", 0, false, MaxTimerSeconds, false, DefaultGracefulShutdownTimeoutSeconds,
        "must be 0 or more and at most 49 days (the default is 20 s)",
        "use a number of seconds from 0 to " + MaxTimerText + "; the default is 20",
        "a number of seconds of 0 or more");

    /// <summary>Autoscaling.MinReplicas.</summary>
    public static readonly OptionRule MinReplicas = new("Autoscaling.MinReplicas", 0, false, MaxNumReplicas, true, 1,
        "must be 0 or more (0 allows scaling to zero) and at most " + MaxReplicasText,
        "use 0 or more replicas (0 allows scaling to zero), at most " + MaxReplicasText,
        "an integer of 0 or more");

    /// <summary>Autoscaling.MaxReplicas (also at least MinReplicas).</summary>
    public static readonly OptionRule MaxReplicas = new("Autoscaling.MaxReplicas", 1, false, MaxNumReplicas, true, 1,
        "must be at most " + MaxReplicasText,
        "use 1 or more replicas, at most " + MaxReplicasText,
        "an integer of 1 or more");

    /// <summary>Autoscaling.InitialReplicas (also between MinReplicas and MaxReplicas).</summary>
    public static readonly OptionRule InitialReplicas = new("Autoscaling.InitialReplicas", 0, false, MaxNumReplicas, true, 1,
        "must be between MinReplicas and MaxReplicas, or null",
        "use a number between MinReplicas and MaxReplicas",
        "an integer of 0 or more");

    /// <summary>Autoscaling.TargetOngoingRequests.</summary>
    public static readonly OptionRule TargetOngoingRequests = new("Autoscaling.TargetOngoingRequests", 0, true, double.MaxValue, false, 2,
        "must be a finite number above 0 (the default is 2)",
        "use a finite number above 0 (the default is 2)",
        "a number above 0");

    /// <summary>Autoscaling.UpscaleDelay (seconds).</summary>
    public static readonly OptionRule UpscaleDelay = new("Autoscaling.UpscaleDelay", 0, false, double.MaxValue, false, 30,
        "must not be negative", "use 0 or more seconds", "a number of seconds of 0 or more");

    /// <summary>Autoscaling.DownscaleDelay (seconds).</summary>
    public static readonly OptionRule DownscaleDelay = new("Autoscaling.DownscaleDelay", 0, false, double.MaxValue, false, 600,
        "must not be negative", "use 0 or more seconds", "a number of seconds of 0 or more");

    /// <summary>Autoscaling.MetricsInterval (seconds).</summary>
    public static readonly OptionRule MetricsInterval = new("Autoscaling.MetricsInterval", 0, true, MaxTimerSeconds, false, 10,
        "must be positive and at most 49 days",
        "use a number of seconds above 0, at most " + MaxTimerText,
        "a number of seconds above 0");

    /// <summary>Autoscaling.LookBackPeriod (seconds; also at least MetricsInterval).</summary>
    public static readonly OptionRule LookBackPeriod = new("Autoscaling.LookBackPeriod", 0, true, double.MaxValue, false, 30,
        "must be at least MetricsInterval",
        "use at least MetricsInterval",
        "a number of seconds above 0");

    /// <summary>Every rule by option name (<c>nameof(DeploymentOptions.X)</c>, <c>Autoscaling.X</c>, <c>Resources</c>).</summary>
    public static readonly System.Collections.Generic.IReadOnlyDictionary<string, OptionRule> All = ByName(
        NumReplicas, MaxOngoingRequests, MaxQueuedRequests, NumCpus, NumGpus, ResourceAmount, HealthCheckPeriod, HealthCheckTimeout,
        GracefulShutdownTimeout, MinReplicas, MaxReplicas, InitialReplicas, TargetOngoingRequests, UpscaleDelay, DownscaleDelay,
        MetricsInterval, LookBackPeriod);

    private static System.Collections.Generic.Dictionary<string, OptionRule> ByName(params OptionRule[] rules)
    {
        var map = new System.Collections.Generic.Dictionary<string, OptionRule>(System.StringComparer.Ordinal);
        foreach (var rule in rules)
            map.Add(rule.Option, rule);
        return map;
    }
}
